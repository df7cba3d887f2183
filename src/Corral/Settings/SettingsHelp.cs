using System.Globalization;

namespace Corral.Settings;

/// <summary>
/// What `corral --help` says of each setting, from <see cref="SettingsTable"/>: its text, its accepted
/// values (a choice's words in the value's name, as argparse's {sync,gthread}) and its default at the
/// end in brackets, as Gunicorn's --help prints "[30]".
/// </summary>
public static class SettingsHelp
{
    public const string CtlDescription = "Talk to a running master over its control socket: corral ctl [--control-socket PATH | -p PIDFILE] {status | add N | remove N | reload | kill PID} [--json] (see corral ctl --help).";

    /// <summary>The value's name after the flag: the choices (sync|gthread|async), INT, SECONDS, or the setting's name; none for a flag.</summary>
    public static string? ValueName(Setting s) => s.ValueNameOverride ?? s.Type switch
    {
        SettingType.Bool => null,
        SettingType.Choice => string.Join('|', s.Choices),
        SettingType.Int => "INT",
        SettingType.Seconds => "SECONDS",
        _ => s.Name.ToUpperInvariant(),
    };

    /// <summary>The help text, the accepted form where the value's name does not say it, and the default.</summary>
    public static string Describe(Setting s)
    {
        var text = s.Help;
        if (s.Type is SettingType.Int or SettingType.String or SettingType.List)
        {
            text += $" Accepted: {s.Accepted}.";
        }
        return Default(s) is { } value ? $"{text} [{value}]" : text;
    }

    /// <summary>The default as the help shows it (30, 127.0.0.1:8000, false); null when there is none.</summary>
    public static string? Default(Setting s) => s.Default switch
    {
        null => null,
        List<string> { Count: 0 } => null,
        List<string> list => string.Join(", ", list),
        bool b => b ? "true" : "false",
        double d => d.ToString(CultureInfo.InvariantCulture),
        long l => l.ToString(CultureInfo.InvariantCulture),
        var v => v.ToString(),
    };
}
