using System.CommandLine;
using System.Text;
using System.Text.Json;
using Corral.Agent.Admission;

namespace Corral.Settings;

/// <summary>What the command line asked for.</summary>
public sealed record LoadResult(CorralConfig? Config, string? Error, bool ShowedHelp = false)
{
    /// <summary>
    /// A bad configuration: one line, as corral prints it. A value quoted in it may hold a line break
    /// (a config file's "\n", an environment variable's): control characters show escaped (\n, \x1b).
    /// </summary>
    public static LoadResult Fail(string error) => new(null, OneLine(error));

    private static string OneLine(string text)
    {
        if (!text.Any(c => char.IsControl(c) || c is '\u2028' or '\u2029'))
        {
            return text;
        }
        var sb = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            _ = c switch
            {
                '\n' => sb.Append("\\n"),
                '\r' => sb.Append("\\r"),
                '\t' => sb.Append("\\t"),
                '\u2028' or '\u2029' => sb.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture)),
                _ when char.IsControl(c) => sb.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)),
                _ => sb.Append(c),
            };
        }
        return sb.ToString();
    }

    /// <summary>What the configuration is good for but worth a line in the log (a reload's statsd lookup that failed).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>The address a --statsd-host name had at the last load: what a reload keeps if the lookup fails now.</summary>
public sealed record StatsdFallback(string Host, string Target);

/// <summary>
/// Resolves the settings from their layers, lowest first: defaults (and a setting's env var, such as
/// WEB_CONCURRENCY), the -c/--config JSON file, CORRAL_CMD_ARGS, the command line. A higher layer
/// replaces a value (lists included), as Gunicorn's does.
/// </summary>
public static class ConfigLoader
{
    public const string CmdArgsVariable = "CORRAL_CMD_ARGS";

    /// <summary>An argument that starts with @ is that text (Gunicorn's argparse reads no @FILE response files).</summary>
    private static readonly ParserConfiguration NoResponseFiles = new() { ResponseFileTokenReplacer = null };

    /// <param name="statsdFallback">
    /// At HUP: the --statsd-host of the running configuration and its address. If the host is the
    /// same and its lookup fails or takes more than a second now, the reload keeps that address (with
    /// a warning) instead of failing or holding up the master's loop.
    /// </param>
    public static LoadResult Load(string[] argv, IReadOnlyDictionary<string, string?> env, TextWriter? helpOutput = null, StatsdFallback? statsdFallback = null)
    {
        var cli = BuildCommand();
        var parsed = cli.Root.Parse(argv, NoResponseFiles);
        // Help or version asked for anywhere, a bundle of short flags such as -hw too, clears the parse
        // errors: nothing else is read.
        if (argv.Any(a => a is "-h" or "--help" or "-?" or "--version") || parsed.Action is { ClearsParseErrors: true })
        {
            var output = helpOutput ?? Console.Out;
            parsed.Invoke(new InvocationConfiguration { Output = output });
            return new LoadResult(null, null, ShowedHelp: true);
        }
        if (FirstParseError(parsed, cli) is { } cliError)
        {
            return LoadResult.Fail(DescribeParseError(cliError, "the command line"));
        }

        try
        {
            // The sources, highest last: the command line names the config file, as CORRAL_CMD_ARGS may.
            var commandLine = cli.Extract(parsed, "the command line");
            var cmdArgs = ReadCmdArgs(cli, env);
            var configPath = (string?)(commandLine.GetValueOrDefault("config") ?? cmdArgs.GetValueOrDefault("config"));
            var file = configPath is null ? [] : ReadConfigFile(configPath);

            var (values, sources) = Merge(env, file, cmdArgs, commandLine);
            Derive(values, sources);
            if (SettingsTable.CheckMemoryLimits((string?)values[SettingsTable.MaxWorkerMemory.Name], (string?)values[SettingsTable.MaxWorkerMemoryCeiling.Name]) is { } memoryError)
            {
                return LoadResult.Fail(memoryError);
            }
            // TLS files: loaded here as the workers will load them, so a bad one stops corral before it starts.
            if (SettingsTable.CheckTls((string?)values[SettingsTable.CertFile.Name], (string?)values[SettingsTable.KeyFile.Name], (string?)values[SettingsTable.CaCerts.Name]) is { } tlsError)
            {
                return LoadResult.Fail(tlsError);
            }
            List<string> warnings = [];
            var statsdTarget = ResolveStatsd(values, sources, statsdFallback, warnings);
            var workerUser = WorkerIdentity.Resolve((string?)values[SettingsTable.User.Name], (string?)values[SettingsTable.Group.Name],
                Os.Accounts.EffectiveUid(), Os.Accounts.EffectiveGid(), s => sources[s.Name] == "command line" ? "the command line" : sources[s.Name]);
            return new LoadResult(new CorralConfig(values, sources) { StatsdTarget = statsdTarget, WorkerUser = workerUser }, null) { Warnings = warnings };
        }
        catch (SettingException e)
        {
            return LoadResult.Fail(e.Message);
        }
        catch (SourceException e)
        {
            return LoadResult.Fail(e.Message);
        }
        catch (FormatException e)
        {
            return LoadResult.Fail(e.Message);
        }
    }

    /// <summary>CORRAL_CMD_ARGS read as more command-line words (none if unset or blank).</summary>
    private static Dictionary<string, object?> ReadCmdArgs(Cli cli, IReadOnlyDictionary<string, string?> env)
    {
        var cmdArgsText = env.GetValueOrDefault(CmdArgsVariable);
        if (string.IsNullOrWhiteSpace(cmdArgsText))
        {
            return [];
        }
        var words = ShellWords.Split(cmdArgsText);
        var parsedEnv = cli.Root.Parse(words, NoResponseFiles);
        if (parsedEnv.Action is { ClearsParseErrors: true })
        {
            throw new SourceException($"{CmdArgsVariable} asks for help, the version or completions ('{cmdArgsText.Trim()}'): those go on the command line (see corral --help)");
        }
        if (FirstParseError(parsedEnv, cli) is { } envError)
        {
            throw new SourceException(DescribeParseError(envError, CmdArgsVariable));
        }
        return cli.Extract(parsedEnv, CmdArgsVariable);
    }

    /// <summary>
    /// Each setting's value and where it came from ("default", "env PORT", "env WEB_CONCURRENCY",
    /// "config file", CORRAL_CMD_ARGS, "command line"): the highest layer that sets it wins.
    /// </summary>
    private static (Dictionary<string, object?> Values, Dictionary<string, string> Sources) Merge(
        IReadOnlyDictionary<string, string?> env, Dictionary<string, object?> file, Dictionary<string, object?> cmdArgs, Dictionary<string, object?> commandLine)
    {
        var values = new Dictionary<string, object?>();
        var sources = new Dictionary<string, string>();
        foreach (var s in SettingsTable.All)
        {
            var value = s.Default is List<string> list ? new List<string>(list) : s.Default;
            var source = "default";
            if (s == SettingsTable.Bind && env.GetValueOrDefault("PORT") is { Length: > 0 } port)
            {
                value = new List<string> { "0.0.0.0:" + port };
                source = "env PORT";
            }
            if (s.EnvVar is not null && env.GetValueOrDefault(s.EnvVar) is { Length: > 0 } envText)
            {
                value = Parse(s, envText, "env " + s.EnvVar);
                source = "env " + s.EnvVar;
            }
            foreach (var (layer, name) in new[] { (file, "config file"), (cmdArgs, CmdArgsVariable), (commandLine, "command line") })
            {
                if (layer.TryGetValue(s.Name, out var v))
                {
                    value = v;
                    source = name;
                }
            }
            if (source == "env PORT")
            {
                // Checked only when used: a platform's PORT does not matter once -b is given.
                Parse(s, ((List<string>)value!)[0], source);
            }
            values[s.Name] = value;
            sources[s.Name] = source;
        }
        return (values, sources);
    }

    /// <summary>Defaults that follow from another setting given, recorded as "derived from ...".</summary>
    private static void Derive(Dictionary<string, object?> values, Dictionary<string, string> sources)
    {
        // Gunicorn: --threads above 1 means the threaded worker unless a class was named.
        if (sources[SettingsTable.WorkerClass.Name] == "default"
            && WorkerClassPolicy.ForUnnamed((int)Math.Min((long)values[SettingsTable.Threads.Name]!, int.MaxValue)) is var derived && derived != WorkerClassPolicy.Default)
        {
            values[SettingsTable.WorkerClass.Name] = derived.Name;
            sources[SettingsTable.WorkerClass.Name] = "derived from --threads";
        }
        // The development server talks more, as Werkzeug's debug mode does.
        if ((bool)values[SettingsTable.Reload.Name]! && sources[SettingsTable.LogLevel.Name] == "default")
        {
            values[SettingsTable.LogLevel.Name] = "debug";
            sources[SettingsTable.LogLevel.Name] = "derived from --reload";
        }
    }

    /// <summary>
    /// --statsd-host: looked up once, here, so a name that does not resolve stops corral before it
    /// starts; at a reload, a lookup that fails keeps the fallback's address with a warning.
    /// </summary>
    private static string? ResolveStatsd(Dictionary<string, object?> values, Dictionary<string, string> sources, StatsdFallback? statsdFallback, List<string> warnings)
    {
        if (values[SettingsTable.StatsdHost.Name] is not string statsdHost)
        {
            return null;
        }
        var known = statsdFallback is { } f && f.Host == statsdHost ? f.Target : null;
        try
        {
            Metrics.StatsdAddress.TryParse(statsdHost, out var address, out _);
            return address!.Resolve(known is null ? null : TimeSpan.FromSeconds(1));
        }
        catch (Metrics.StatsdException e) when (known is not null)
        {
            warnings.Add($"--statsd-host {statsdHost}: {e.Message}; keeping its last address, {known}");
            return known;
        }
        catch (Metrics.StatsdException e)
        {
            var source = sources[SettingsTable.StatsdHost.Name];
            var reason = new SettingException(SettingsTable.StatsdHost, statsdHost, e.Message).Reason;
            throw new SettingException(SettingsTable.StatsdHost, statsdHost, $"{reason} (from {(source == "command line" ? "the command line" : source)})");
        }
    }

    private static object Parse(Setting s, string text, string where)
    {
        try
        {
            return s.ParseText(text);
        }
        catch (SettingException e)
        {
            throw new SettingException(s, text, $"{e.Reason} (from {where})");
        }
    }

    /// <summary>
    /// The error to report: an unknown option first (System.CommandLine would otherwise take
    /// "--typo" as the APP argument and complain about the real APP instead).
    /// </summary>
    private static string? FirstParseError(ParseResult parsed, Cli cli)
    {
        var unknown = parsed.UnmatchedTokens.FirstOrDefault(t => t.StartsWith('-') && t.Length > 1);
        if (unknown is null && parsed.GetValue(cli.AppArgument) is { } app && app.StartsWith('-') && app.Length > 1)
        {
            unknown = app;
        }
        if (unknown is not null)
        {
            return $"Unrecognized command or argument '{unknown}'.";
        }
        if (parsed.CommandResult.Command == cli.Ctl)
        {
            return "'ctl' goes first: " + Control.CtlCommand.Usage;
        }
        return parsed.Errors.Count > 0 ? parsed.Errors[0].Message : null;
    }

    private static string DescribeParseError(string message, string where)
    {
        var line = message.ReplaceLineEndings(" ").Trim();
        if (line.StartsWith("Unrecognized command or argument", StringComparison.Ordinal))
        {
            var name = line[(line.IndexOf('\'') + 1)..line.LastIndexOf('\'')];
            if (RefusedSettings.ForFlag(name) is { } refused)
            {
                return where == "the command line" ? refused : $"{refused} (from {where})";
            }
            return name.StartsWith('-')
                ? $"unknown option '{name}' in {where} (see corral --help)"
                : $"unexpected argument '{name}' in {where}: corral takes one APP (see corral --help)";
        }
        return $"{line} ({where}; see corral --help)";
    }

    private static Dictionary<string, object?> ReadConfigFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SourceException($"config file {path}: cannot read it: {e.Message}");
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new SourceException($"config file {path}: not valid JSON: {e.Message.Split(". ")[0]} (line {e.LineNumber + 1})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new SourceException($"config file {path}: expected a JSON object of settings, e.g. {{\"workers\": 4}}");
            }
            var result = new Dictionary<string, object?>();
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                var key = property.Name.Replace('-', '_');
                if (RefusedSettings.ForKey(key) is { } refused)
                {
                    throw new SourceException($"config file {path}: {refused}");
                }
                var s = SettingsTable.ByName(key);
                if (s is null || s == SettingsTable.Config || s == SettingsTable.PrintConfig || s == SettingsTable.CheckConfig)
                {
                    throw new SourceException($"config file {path}: unknown setting '{property.Name}' (settings are listed in docs/settings.md)");
                }
                try
                {
                    result[s.Name] = s.ParseJson(property.Value);
                }
                catch (SettingException e)
                {
                    throw new SourceException($"config file {path}: {e.Message}");
                }
            }
            return result;
        }
    }

    /// <summary>A source (the config file, CORRAL_CMD_ARGS) that cannot be read: its error, as corral prints it.</summary>
    private sealed class SourceException(string message) : Exception(message);

    /// <summary>The System.CommandLine command built from the table, and how to read values back.</summary>
    private sealed class Cli
    {
        public required RootCommand Root { get; init; }
        public required Dictionary<Setting, Option> Options { get; init; }
        public required Argument<string?> AppArgument { get; init; }

        /// <summary>`corral ctl ...`, listed in the help; Program runs it before any parse, so here it is only ever misplaced.</summary>
        public required Command Ctl { get; init; }

        /// <param name="where">Where the words came from, as an error names it: the command line or CORRAL_CMD_ARGS.</param>
        public Dictionary<string, object?> Extract(ParseResult parsed, string where)
        {
            var result = new Dictionary<string, object?>();
            foreach (var (s, option) in Options)
            {
                var r = parsed.GetResult(option);
                if (r is null || r.Implicit)
                {
                    continue;
                }
                result[s.Name] = s.Type switch
                {
                    SettingType.Bool => parsed.GetValue((Option<bool>)option),
                    SettingType.List => parsed.GetValue((Option<string[]>)option)!
                        .Select(v => Parse(s, v, where)).SelectMany(v => (List<string>)v).ToList(),
                    // Given twice, the last one wins (argparse's "store", as Gunicorn).
                    _ => Parse(s, parsed.GetValue((Option<string[]>)option)![^1], where),
                };
            }
            if (parsed.GetValue(AppArgument) is { } app)
            {
                result[SettingsTable.App.Name] = app;
            }
            return result;
        }
    }

    private const int ExitCodesOk = 0;

    private static Cli BuildCommand()
    {
        var root = new RootCommand("corral: the production application server for ASP.NET Core on Linux (Gunicorn's flags and signals). Settings: docs/settings.md.");
        var options = new Dictionary<Setting, Option>();
        foreach (var s in SettingsTable.All.Where(s => s.Flags.Length > 0))
        {
            var name = s.LongFlag;
            var aliases = s.Flags.Where(f => f != name).ToArray();
            Option option = s.Type switch
            {
                SettingType.Bool => new Option<bool>(name, aliases),
                _ => new Option<string[]>(name, aliases) { AllowMultipleArgumentsPerToken = false, Arity = ArgumentArity.OneOrMore },
            };
            option.Description = SettingsHelp.Describe(s);
            option.HelpName = SettingsHelp.ValueName(s);
            root.Options.Add(option);
            options[s] = option;
        }
        var app = new Argument<string?>("APP") { Description = SettingsTable.App.Help, Arity = ArgumentArity.ZeroOrOne };
        root.Arguments.Add(app);
        var ctl = new Command("ctl", SettingsHelp.CtlDescription) { TreatUnmatchedTokensAsErrors = false };
        ctl.Arguments.Add(new Argument<string[]>("COMMAND") { Arity = ArgumentArity.ZeroOrMore });
        root.Subcommands.Add(ctl);
        // A root with a subcommand needs an action of its own, or a plain `corral APP` is "Required command was not provided".
        root.SetAction(_ => ExitCodesOk);
        return new Cli { Root = root, Options = options, AppArgument = app, Ctl = ctl };
    }
}
