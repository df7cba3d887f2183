namespace Corral.Settings;

/// <summary>
/// Gunicorn settings that make no sense for .NET: given on the command line, in CORRAL_CMD_ARGS or in a
/// config file, each is refused with one line that says why and what to do instead (exit 2), rather
/// than as an unknown option.
/// </summary>
public static class RefusedSettings
{
    /// <summary>One refused setting: its config-file names, its flags, and the line corral prints.</summary>
    public sealed record Refused(string[] Names, string[] Flags, string Why);

    public static readonly IReadOnlyList<Refused> All =
    [
        new(["preload_app", "preload"], ["--preload"],
            "--preload (preload_app) is not for .NET: Gunicorn loads the app once in the master and forks workers that share it, and a .NET runtime cannot fork, so each corral worker starts its own process and loads the app; for a faster first request use --warmup-requests (and a ReadyToRun or Native AOT publish), and --check-config to catch a broken app before a deploy"),
        new(["daemon"], ["-D", "--daemon"],
            "--daemon is not for corral: it stays in the foreground, as a service manager expects; run it under systemd (docs/deployment.md) or another supervisor"),
    ];

    /// <summary>The refusal for a command-line word ("--preload", "--daemon=true", "-D"); null if it is not refused.</summary>
    public static string? ForFlag(string word)
    {
        var flag = word.Split('=', 2)[0];
        return All.FirstOrDefault(r => r.Flags.Contains(flag))?.Why;
    }

    /// <summary>The refusal for a config-file key (preload_app, "preload-app", daemon); null if it is not refused.</summary>
    public static string? ForKey(string key)
    {
        var name = key.Replace('-', '_');
        return All.FirstOrDefault(r => r.Names.Contains(name))?.Why;
    }
}
