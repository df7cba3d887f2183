using System.Globalization;

namespace Corral.Settings;

public enum SettingType
{
    /// <summary>Free text (a path, a format).</summary>
    String,
    /// <summary>A whole number, with a lower bound.</summary>
    Int,
    /// <summary>A number of seconds, fractions allowed.</summary>
    Seconds,
    /// <summary>A flag without a value.</summary>
    Bool,
    /// <summary>Repeatable: every occurrence adds a value.</summary>
    List,
    /// <summary>One of a fixed set of words.</summary>
    Choice,
}

/// <summary>
/// One setting, declared once: the CLI, the config file, CORRAL_CMD_ARGS, --print-config, validation
/// and docs/settings.md are all generated from these declarations (see <see cref="SettingsTable"/>).
/// </summary>
public sealed class Setting
{
    public required string Name { get; init; }
    public required string[] Flags { get; init; }
    public required SettingType Type { get; init; }
    public required string Section { get; init; }
    public required string Help { get; init; }

    /// <summary>Default before any layer; a list's default is an empty list unless stated.</summary>
    public object? Default { get; init; }

    /// <summary>An environment variable that sets the default (Gunicorn's WEB_CONCURRENCY for workers).</summary>
    public string? EnvVar { get; init; }

    /// <summary>The key in a -c/--config JSON file: the setting's name.</summary>
    public string ConfigKey => Name;

    public string[] Choices { get; init; } = [];
    public long Min { get; init; } = long.MinValue;
    public long Max { get; init; } = long.MaxValue;

    /// <summary>Extra check of a parsed value; returns the error text (without the setting's name) or null.</summary>
    public Func<object, string?>? Validate { get; init; }

    /// <summary>Set in the config file or on the command line, never a real default (e.g. --print-config).</summary>
    public bool CommandLineOnly { get; init; }

    /// <summary>The accepted form, as error messages and the docs say it.</summary>
    public string Accepted => AcceptedOverride ?? Type switch
    {
        SettingType.Int when Max != long.MaxValue => $"a whole number from {Min} to {Max}",
        SettingType.Int when Min != long.MinValue => $"a whole number >= {Min}",
        SettingType.Int => "a whole number",
        SettingType.Seconds => "a number of seconds >= 0",
        SettingType.Bool => "true or false",
        SettingType.Choice => "one of " + string.Join(", ", Choices),
        _ => "text",
    };

    public string? AcceptedOverride { get; init; }

    /// <summary>The value's name in --help where the type's (INT, SECONDS, the setting's name) would mislead: -w's N|MIN:MAX.</summary>
    public string? ValueNameOverride { get; init; }

    /// <summary>A text setting a config file may also give as a JSON number (a size in bytes).</summary>
    public bool JsonNumberAllowed { get; init; }

    public string LongFlag => Flags.First(f => f.StartsWith("--", StringComparison.Ordinal));

    /// <summary>Parses one textual value (from the CLI, CORRAL_CMD_ARGS or an env var).</summary>
    public object ParseText(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            // An empty path or address is never meant: "" would crash the master later (errorlog,
            // pidfile) or bind every interface (bind).
            throw new SettingException(this, text);
        }
        object value = Type switch
        {
            SettingType.Int => long.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
                ? l : throw new SettingException(this, text),
            SettingType.Seconds => double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d >= 0 && double.IsFinite(d)
                ? d : throw new SettingException(this, text),
            SettingType.Bool => text.Trim().ToLowerInvariant() switch
            {
                "true" or "1" or "yes" or "on" => true,
                "false" or "0" or "no" or "off" => false,
                _ => throw new SettingException(this, text),
            },
            SettingType.Choice => Choices.Contains(text.Trim()) ? text.Trim() : throw new SettingException(this, text),
            SettingType.List => new List<string> { text },
            _ => text,
        };
        return Check(value, text);
    }

    /// <summary>Parses one JSON value from a config file.</summary>
    public object ParseJson(System.Text.Json.JsonElement element)
    {
        var raw = element.ToString();
        switch (Type)
        {
            case SettingType.List:
                if (element.ValueKind == System.Text.Json.JsonValueKind.Array)
                {
                    var items = new List<string>();
                    foreach (var item in element.EnumerateArray())
                    {
                        items.Add(item.ValueKind == System.Text.Json.JsonValueKind.String ? item.GetString()! : throw new SettingException(this, item.ToString()));
                        Check(new List<string> { items[^1] }, items[^1]);
                    }
                    return items;
                }
                if (element.ValueKind == System.Text.Json.JsonValueKind.String)
                {
                    return ParseText(element.GetString()!);
                }
                throw new SettingException(this, raw);
            case SettingType.Bool:
                return element.ValueKind switch
                {
                    System.Text.Json.JsonValueKind.True => true,
                    System.Text.Json.JsonValueKind.False => false,
                    _ => throw new SettingException(this, raw),
                };
            case SettingType.Int or SettingType.Seconds:
                if (element.ValueKind is System.Text.Json.JsonValueKind.Number or System.Text.Json.JsonValueKind.String)
                {
                    return ParseText(element.ValueKind == System.Text.Json.JsonValueKind.String ? element.GetString()! : raw);
                }
                throw new SettingException(this, raw);
            default:
                if (element.ValueKind == System.Text.Json.JsonValueKind.String)
                {
                    return ParseText(element.GetString()!);
                }
                if (element.ValueKind == System.Text.Json.JsonValueKind.Number && JsonNumberAllowed)
                {
                    return ParseText(raw);
                }
                if (element.ValueKind == System.Text.Json.JsonValueKind.Null && Default is null)
                {
                    return null!;
                }
                throw new SettingException(this, raw);
        }
    }

    private object Check(object value, string text)
    {
        if (value is long l && (l < Min || l > Max))
        {
            throw new SettingException(this, text);
        }
        if (Validate is not null)
        {
            var error = value is List<string> list ? list.Select(v => Validate(v)).FirstOrDefault(e => e is not null) : Validate(value);
            if (error is not null)
            {
                throw new SettingException(this, text, error);
            }
        }
        return value;
    }
}

/// <summary>A bad value: the message names the setting, the value and the accepted form, on one line.</summary>
public sealed class SettingException(Setting setting, string value, string? reason = null)
    : Exception($"{(setting.Flags.Length > 0 ? setting.LongFlag : setting.Name.ToUpperInvariant())} ({setting.Name}): '{value}' is not valid: {Explain(setting, reason)}")
{
    public Setting Setting { get; } = setting;

    /// <summary>What is wrong, always with the accepted form (a validator's reason may not say it).</summary>
    public string Reason { get; } = Explain(setting, reason);

    private static string Explain(Setting setting, string? reason) =>
        reason is null ? "expected " + setting.Accepted
        : reason.Contains(setting.Accepted, StringComparison.Ordinal) ? reason
        : $"{reason} (expected {setting.Accepted})";
}
