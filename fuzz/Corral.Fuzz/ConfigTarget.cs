using System.Text;
using Corral.Settings;

namespace Corral.Fuzz;

/// <summary>
/// config: the -c/--config JSON file and CORRAL_CMD_ARGS (and WEB_CONCURRENCY, PORT) through
/// <see cref="ConfigLoader.Load"/>, as `corral -c FILE app.dll` loads them. The input is the file's
/// bytes, then after a NUL byte CORRAL_CMD_ARGS, then WEB_CONCURRENCY, then PORT. Promises: no
/// exception (a bad value is a <see cref="LoadResult"/> error, which corral prints as one line and
/// exits 2); that error is one line; a configuration that loads gives every value the master reads,
/// and prints (--print-config).
/// </summary>
internal static class ConfigTarget
{
    public static readonly Target Target = new("config", "config file and CORRAL_CMD_ARGS (ConfigLoader.Load)", Run, Dictionary);

    private static readonly string ConfigPath = Path.Combine(Path.GetTempPath(), $"corral-fuzz-{Environment.ProcessId}.json");

    private static readonly System.Reflection.PropertyInfo[] Properties = [.. typeof(CorralConfig).GetProperties().Where(p => p.GetIndexParameters().Length == 0)];

    static ConfigTarget() => AppDomain.CurrentDomain.ProcessExit += (_, _) => File.Delete(ConfigPath);

    private static void Run(byte[] input)
    {
        var nul = Array.IndexOf(input, (byte)0);
        File.WriteAllBytes(ConfigPath, nul < 0 ? input : input[..nul]);
        var rest = nul < 0 ? [] : Encoding.UTF8.GetString(input, nul + 1, input.Length - nul - 1).Split('\0');
        var env = new Dictionary<string, string?>
        {
            [ConfigLoader.CmdArgsVariable] = rest.ElementAtOrDefault(0),
            ["WEB_CONCURRENCY"] = rest.ElementAtOrDefault(1),
            ["PORT"] = rest.ElementAtOrDefault(2),
        };
        var result = ConfigLoader.Load(["-c", ConfigPath, "app.dll"], env, TextWriter.Null);
        if (result.Config is not { } config)
        {
            Targets.Promise(!string.IsNullOrWhiteSpace(result.Error), "neither a configuration nor an error");
            Targets.Promise(result.Error!.IndexOfAny(['\n', '\r', '\u0085', '\u2028', '\u2029']) < 0, $"an error of more than one line: '{result.Error}'");
            return;
        }
        foreach (var p in Properties)
        {
            _ = p.GetValue(config);
        }
        _ = config.Print();
    }

    /// <summary>Every setting's config-file key and flags, the choices, and JSON's punctuation.</summary>
    private static IReadOnlyList<byte[]> Dictionary()
    {
        var tokens = new List<string> { "{", "}", "[", "]", ":", ",", "\"", "true", "false", "null", "0", "-1", "1.5", "1e999", "//", "/*", "*/", "\\u0000", "'", " ", "\0", "-h", "-?", "--help", "--version", "--", "=", "@", "[suggest]" };
        foreach (var s in SettingsTable.All)
        {
            tokens.Add($"\"{s.Name}\":");
            tokens.Add($"\"{s.Name.Replace('_', '-')}\":");
            tokens.AddRange(s.Flags.Select(f => f + " "));
            tokens.AddRange(s.Choices);
        }
        tokens.AddRange(["127.0.0.1:8000", "[::1]:80", "unix:/x", "fd://3", "%(h)s", "{x}i", "*", "X-Forwarded-Proto=https", "localhost:8125", "022", "0o22"]);
        return Targets.Tokens([.. tokens.Distinct()])();
    }
}
