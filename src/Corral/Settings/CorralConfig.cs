using System.Globalization;
using System.Text;
using Corral.Agent.Admission;
using Corral.Agent.Contract;

namespace Corral.Settings;

/// <summary>The resolved settings: one value per setting of <see cref="SettingsTable"/>, with typed accessors.</summary>
public sealed class CorralConfig
{
    private readonly Dictionary<string, object?> _values;
    private readonly Dictionary<string, string> _sources;

    public CorralConfig(Dictionary<string, object?> values, Dictionary<string, string> sources)
    {
        _values = values;
        _sources = sources;
    }

    public object? this[Setting s] => _values.GetValueOrDefault(s.Name);

    /// <summary>Where a value came from: default, env NAME, config file, CORRAL_CMD_ARGS, command line.</summary>
    public string SourceOf(Setting s) => _sources.GetValueOrDefault(s.Name, "default");

    public bool IsExplicit(Setting s) => SourceOf(s) != "default"
        && !SourceOf(s).StartsWith("derived", StringComparison.Ordinal) && !SourceOf(s).StartsWith("env ", StringComparison.Ordinal);

    private string? Str(Setting s) => (string?)this[s];
    private int Int(Setting s) => (int)Math.Clamp((long)this[s]!, int.MinValue, int.MaxValue);
    private double Sec(Setting s) => (double)this[s]!;
    private IReadOnlyList<string> List(Setting s) => (List<string>?)this[s] ?? [];

    public string? App => Str(SettingsTable.App);
    public string? ConfigFile => Str(SettingsTable.Config);
    public bool PrintConfig => (bool)this[SettingsTable.PrintConfig]!;
    public bool CheckConfig => (bool)this[SettingsTable.CheckConfig]!;
    public bool Reload => (bool)this[SettingsTable.Reload]!;
    public IReadOnlyList<string> ReloadExtraFiles => List(SettingsTable.ReloadExtraFiles);
    public IReadOnlyList<string> Bind => List(SettingsTable.Bind);
    public int Backlog => Int(SettingsTable.Backlog);
    /// <summary>-w as a range (MIN = MAX for a fixed count).</summary>
    public WorkerRange WorkerRange => WorkerRange.Parse(Str(SettingsTable.Workers)!, out _) ?? new WorkerRange(1, 1);

    /// <summary>The workers started: -w's count, or MIN of its range.</summary>
    public int Workers => WorkerRange.Min;
    public TimeSpan ScaleUpAfter => TimeSpan.FromSeconds(Sec(SettingsTable.ScaleUpAfter));
    public TimeSpan ScaleDownAfter => TimeSpan.FromSeconds(Sec(SettingsTable.ScaleDownAfter));
    public TimeSpan ScaleCooldown => TimeSpan.FromSeconds(Sec(SettingsTable.ScaleCooldown));
    /// <summary>-k: the class's rules (its name when printed).</summary>
    public WorkerClassPolicy WorkerClass => WorkerClassPolicy.Named(Str(SettingsTable.WorkerClass)!) ?? WorkerClassPolicy.Default;
    public int Threads => Int(SettingsTable.Threads);
    public int WorkerConnections => Int(SettingsTable.WorkerConnections);
    public int PackLeaderConnections => Int(SettingsTable.PackLeaderConnections);
    public AcceptPolicy AcceptPolicy => Enum.Parse<AcceptPolicy>(Str(SettingsTable.AcceptPolicy)!, ignoreCase: true);
    public long MaxRequests => (long)this[SettingsTable.MaxRequests]!;
    public long MaxRequestsJitter => (long)this[SettingsTable.MaxRequestsJitter]!;
    public TimeSpan MaxWorkerLifetime => TimeSpan.FromSeconds(Sec(SettingsTable.MaxWorkerLifetime));
    public TimeSpan MaxWorkerLifetimeJitter => TimeSpan.FromSeconds(Sec(SettingsTable.MaxWorkerLifetimeJitter));
    public int MaxRecycleCpu => Int(SettingsTable.MaxRecycleCpu);
    /// <summary>--max-worker-memory in bytes; 0: off.</summary>
    public long MaxWorkerMemory => Str(SettingsTable.MaxWorkerMemory) is { } limit ? ByteSize.Parse(limit) ?? 0 : 0;

    /// <summary>
    /// --max-worker-memory-ceiling in bytes: as set, else 1.5 x --max-worker-memory; 0 when there is no limit.
    /// </summary>
    public long MaxWorkerMemoryCeiling => MaxWorkerMemory is > 0 and var limit
        ? (Str(SettingsTable.MaxWorkerMemoryCeiling) is { } ceiling && ByteSize.Parse(ceiling) is > 0 and var c ? c : limit + limit / 2)
        : 0;

    public int SpareWorkers => Int(SettingsTable.SpareWorkers);
    public int WarmupRequests => Int(SettingsTable.WarmupRequests);
    public IReadOnlyList<string> WarmupPaths => List(SettingsTable.WarmupPath);
    public TimeSpan Timeout => TimeSpan.FromSeconds(Sec(SettingsTable.Timeout));
    public TimeSpan RequestTimeout => TimeSpan.FromSeconds(Sec(SettingsTable.RequestTimeout));
    public TimeSpan RequestTimeoutGrace => TimeSpan.FromSeconds(Sec(SettingsTable.RequestTimeoutGrace));
    public TimeSpan GracefulTimeout => TimeSpan.FromSeconds(Sec(SettingsTable.GracefulTimeout));
    public double KeepAlive => Sec(SettingsTable.KeepAlive);
    public string Gc => Str(SettingsTable.Gc)!;
    public string ReloadStrategy => Str(SettingsTable.ReloadStrategy)!;
    public bool JitProfile => Str(SettingsTable.JitProfile) == "on";
    public int BootNice => Int(SettingsTable.BootNice);
    public bool ReadyToRun => Str(SettingsTable.ReadyToRun) == "on";
    public int LimitRequestLine => Int(SettingsTable.LimitRequestLine);
    public int LimitRequestFields => Int(SettingsTable.LimitRequestFields);
    public int LimitRequestFieldSize => Int(SettingsTable.LimitRequestFieldSize);
    public int LimitRequestHeadersSize => Int(SettingsTable.LimitRequestHeadersSize);
    public string? Chdir => Str(SettingsTable.Chdir);
    public int Umask => SettingsTable.ParseUmask(Str(SettingsTable.Umask) ?? "0") ?? 0;
    public bool ReusePort => (bool)this[SettingsTable.ReusePort]!;
    public string? ProcName => Str(SettingsTable.ProcName);
    public string? User => Str(SettingsTable.User);
    public string? Group => Str(SettingsTable.Group);
    public string? PidFile => Str(SettingsTable.PidFile);
    public IReadOnlyList<string> RawEnv => List(SettingsTable.RawEnv);
    public string? AccessLog => Str(SettingsTable.AccessLog);
    public string AccessLogFormat => Str(SettingsTable.AccessLogFormatSetting)!;
    public bool AccessLogJson => (bool)this[SettingsTable.AccessLogJson]!;
    public string ErrorLog => Str(SettingsTable.ErrorLog) ?? "-";
    public string LogLevel => Str(SettingsTable.LogLevel)!;
    public string ForwardedAllowIps => Str(SettingsTable.ForwardedAllowIps)!;
    public string SecureSchemeHeaders => Str(SettingsTable.SecureSchemeHeaders)!;
    public bool ProxyProtocol => (bool)this[SettingsTable.ProxyProtocol]!;
    /// <summary>--http-protocols as given (h1, h2, h2,h1); null: the app's choice.</summary>
    public string? HttpProtocols => Str(SettingsTable.HttpProtocols);
    public string? CertFile => Str(SettingsTable.CertFile);
    public string? KeyFile => Str(SettingsTable.KeyFile);
    public string? CaCerts => Str(SettingsTable.CaCerts);
    public string? MetricsBind => Str(SettingsTable.MetricsBind);
    public string? StatsdHost => Str(SettingsTable.StatsdHost);
    public string StatsdPrefix => Agent.Metrics.StatsdFormat.NormalizePrefix(Str(SettingsTable.StatsdPrefix));
    public string? DogstatsdTags => Str(SettingsTable.DogstatsdTags);

    /// <summary>--statsd-host resolved once when the settings were loaded (IP:PORT or unix:PATH); null without it.</summary>
    public string? StatsdTarget { get; init; }

    /// <summary>-u/--user and -g/--group resolved when the settings were loaded; null: the workers stay who the master is.</summary>
    public WorkerIdentity? WorkerUser { get; init; }

    /// <summary>--control-socket, or PIDFILE.ctl next to the pid file; null: no control socket.</summary>
    public string? ControlSocket => Str(SettingsTable.ControlSocket) ?? (PidFile is { } pid ? pid + ".ctl" : null);

    /// <summary>--print-config: every setting, its value and where it came from, Gunicorn's layout.</summary>
    public string Print()
    {
        var sb = new StringBuilder();
        var width = SettingsTable.All.Max(s => s.Name.Length);
        foreach (var s in SettingsTable.All)
        {
            sb.Append(s.Name.PadRight(width)).Append(" = ").Append(FormatValue(this[s]));
            sb.Append("  (").Append(SourceOf(s)).AppendLine(")");
        }
        return sb.ToString();
    }

    public static string FormatValue(object? value) => value switch
    {
        null => "None",
        List<string> list => "[" + string.Join(", ", list.Select(v => "'" + v + "'")) + "]",
        bool b => b ? "True" : "False",
        double d => d.ToString(CultureInfo.InvariantCulture),
        long l => l.ToString(CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
