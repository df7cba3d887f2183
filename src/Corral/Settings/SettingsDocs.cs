using System.Globalization;
using System.Text;

namespace Corral.Settings;

/// <summary>
/// docs/settings.md, generated from <see cref="SettingsTable"/> (a unit test keeps the file equal to
/// <see cref="Render"/>; CORRAL_UPDATE_DOCS=1 rewrites it).
/// </summary>
public static class SettingsDocs
{
    /// <summary>The config file example of the docs (a unit test loads it).</summary>
    public const string ExampleConfig = """
        {
          // comments and trailing commas are allowed
          "bind": ["unix:/run/myapp/corral.sock", "127.0.0.1:8000"],
          "workers": 4,
          "worker_class": "gthread",
          "threads": 8,
          "timeout": 60,
          "max_requests": 10000,
          "max_requests_jitter": 500,
          "raw_env": ["ASPNETCORE_ENVIRONMENT=Production"],
          "accesslog": "-",
        }
        """;

    public static string Render()
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Settings");
        sb.AppendLine();
        sb.AppendLine("<!-- Generated from src/Corral/Settings/SettingsTable.cs by SettingsDocs.Render(): do not edit by hand.");
        sb.AppendLine("     Regenerate with: CORRAL_UPDATE_DOCS=1 dotnet test tests/Corral.Tests -->");
        sb.AppendLine();
        sb.AppendLine("Every setting corral has, from the one table that also makes its command line, its config file,");
        sb.AppendLine("`CORRAL_CMD_ARGS`, `--print-config` and its error messages. Names, flags and meanings are Gunicorn's");
        sb.AppendLine("wherever Gunicorn has the setting.");
        sb.AppendLine();

        sb.AppendLine("## Where a value comes from");
        sb.AppendLine();
        sb.AppendLine("Lowest first, as Gunicorn; a higher layer replaces the value of a lower one (lists too: `-b` on the");
        sb.AppendLine("command line replaces every `bind` of the config file):");
        sb.AppendLine();
        sb.AppendLine("1. the default;");
        sb.AppendLine("2. a setting's environment variable: `WEB_CONCURRENCY` for `workers`; `PORT` makes the default bind `0.0.0.0:$PORT`;");
        sb.AppendLine("3. the `-c/--config` JSON file;");
        sb.AppendLine("4. `CORRAL_CMD_ARGS`;");
        sb.AppendLine("5. the command line.");
        sb.AppendLine();
        sb.AppendLine("`corral --print-config APP` prints every setting, its value and where it came from. A bad value is");
        sb.AppendLine("one line that names the flag, the value and the accepted form; corral then exits with code 2.");
        sb.AppendLine("`--threads N` (N > 1) without `-k` picks `gthread`.");
        sb.AppendLine();

        sb.AppendLine("## CORRAL_CMD_ARGS");
        sb.AppendLine();
        sb.AppendLine("Gunicorn's `GUNICORN_CMD_ARGS`: command-line flags in an environment variable, above the config file and");
        sb.AppendLine("below the real command line. It is split into words as a POSIX shell would (single and double quotes,");
        sb.AppendLine("backslashes), with no expansion of `$VARIABLES` or globs:");
        sb.AppendLine();
        sb.AppendLine("```sh");
        sb.AppendLine("CORRAL_CMD_ARGS='-w 4 --access-logfile - --access-logformat \"%(h)s %(r)s %(s)s\"' corral App.dll");
        sb.AppendLine("```");
        sb.AppendLine();

        sb.AppendLine("## The config file");
        sb.AppendLine();
        sb.AppendLine("`-c/--config FILE` names a JSON object of settings, keyed by the names below (`max-requests` and");
        sb.AppendLine("`max_requests` both work). Comments and trailing commas are allowed; a list setting takes an array or");
        sb.AppendLine("one string; numbers may be given as JSON numbers or strings. An unknown key, a value of the wrong type,");
        sb.AppendLine("or malformed JSON is an error naming the file and the key. The file is read again on HUP.");
        sb.AppendLine();
        sb.AppendLine("```jsonc");
        sb.AppendLine(ExampleConfig.TrimEnd());
        sb.AppendLine("```");
        sb.AppendLine();

        sb.AppendLine("## Deliberate differences from Gunicorn");
        sb.AppendLine();
        sb.AppendLine("- The default worker class is `async`, not `sync`: ASP.NET Core apps are asynchronous where WSGI apps are");
        sb.AppendLine("  not. Give `-k sync` for Gunicorn's one-request-at-a-time behaviour. `-k sync --threads N` stays `sync`");
        sb.AppendLine("  (Gunicorn would switch to `gthread`); only `--threads N` without `-k` picks `gthread`.");
        sb.AppendLine("- Access-log values are escaped: `\"` as `\\\"`, `\\` as `\\\\`, control characters as `\\xNN` (U+2028 and");
        sb.AppendLine("  U+2029 as `\\u2028`, `\\u2029`), so a request header cannot forge a field or a line. Gunicorn escapes");
        sb.AppendLine("  only `\"`. An unknown atom is an error at start, where Gunicorn prints `-`; `%(b)s` prints `0` for an");
        sb.AppendLine("  empty body, as Gunicorn really does; `%({NAME}e)s` reads the worker's environment variable, as there is");
        sb.AppendLine("  no WSGI environ.");
        sb.AppendLine("- The config file is JSON, not Python: it sets values, it runs no code (no server hooks).");
        sb.AppendLine("- A `sync` worker is not taken by a slow client. Gunicorn's waits for the request head of the connection it");
        sb.AppendLine("  took; corral's holds connections whose head has not arrived aside (up to `worker_connections`) and takes");
        sb.AppendLine("  the next; it still runs one request at a time and closes every connection (docs/deployment.md).");
        sb.AppendLine("- `limit_request_headers_size` (64 KiB) bounds the bytes of a request's header fields together. Gunicorn");
        sb.AppendLine("  has no such setting: its total is `limit_request_fields` x `limit_request_field_size` (about 800 KB),");
        sb.AppendLine("  held by a sync worker for one connection at a time; a corral worker holds many connections whose head");
        sb.AppendLine("  has not ended, and would hold that much for each. A field over `limit_request_field_size` gets 431 and");
        sb.AppendLine("  the connection is closed, as Kestrel does for its own 431s.");
        sb.AppendLine();

        foreach (var section in SettingsTable.All.Select(s => s.Section).Distinct())
        {
            sb.Append("## ").AppendLine(section);
            sb.AppendLine();
            foreach (var s in SettingsTable.All.Where(s => s.Section == section))
            {
                AppendSetting(sb, s);
            }
        }
        return sb.ToString();
    }

    private static void AppendSetting(StringBuilder sb, Setting s)
    {
        sb.Append("### `").Append(s.Name).AppendLine("`");
        sb.AppendLine();
        sb.Append("- flags: ").AppendLine(s.Flags.Length == 0 ? "none: the positional `APP` argument" : string.Join(", ", s.Flags.Select(f => $"`{f}`")));
        var env = s.EnvVar is not null ? $"`{s.EnvVar}`" : s == SettingsTable.Bind ? "`PORT` (as `0.0.0.0:$PORT`)" : "none";
        sb.Append("- environment variable: ").AppendLine(env);
        sb.Append("- config key: ").AppendLine(s.CommandLineOnly ? "none: command line only" : $"`{s.ConfigKey}`");
        sb.Append("- default: ").AppendLine(FormatDefault(s.Default));
        sb.Append("- accepted: ").AppendLine(Escape(s.Accepted));
        sb.AppendLine();
        sb.AppendLine(Escape(s.Help));
        sb.AppendLine();
    }

    private static string FormatDefault(object? value) => value switch
    {
        null => "none",
        List<string> { Count: 0 } => "none",
        List<string> list => string.Join(", ", list.Select(v => $"`{v}`")),
        bool b => b ? "`true`" : "`false`",
        double d => $"`{d.ToString(CultureInfo.InvariantCulture)}`",
        long l => $"`{l.ToString(CultureInfo.InvariantCulture)}`",
        _ => $"`{value}`",
    };

    /// <summary>Plain text in Markdown: angle brackets would be read as HTML.</summary>
    private static string Escape(string text) => text.Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
}
