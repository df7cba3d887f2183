using System.Text.Json;
using System.Text.Json.Serialization;

namespace Corral.Agent.Contract;

/// <summary>
/// What the master tells a worker, passed as JSON in the <see cref="EnvironmentVariable"/> environment
/// variable. The master builds it from its settings; the agent only reads it.
/// </summary>
public sealed class AgentOptions
{
    public const string EnvironmentVariable = "CORRAL_AGENT";

    /// <summary>
    /// The version of these options and of the control channel's messages. A Native AOT app links its
    /// own copy of the agent, which may be older or newer than the corral that runs it: the two must
    /// speak the same version. Raise it with every change either side could misread.
    /// </summary>
    public const int CurrentProtocol = 6; // 2: heartbeats carry their send time; 3: options grouped, the stats report's buckets as two arrays; 4: HttpProtocols, the "serving" line, AffinityDir, ProcessTitle, User (-u/-g); 5: MaxWorkerMemory, "recycle memory", RequestTimeout, RequestTimeoutGrace, the "hung" line; 6: PackLeaderConnections, Spare (SIGUSR2 promotes a spare)

    /// <summary>The master's <see cref="CurrentProtocol"/> (0: a master from before there was one).</summary>
    public int Protocol { get; set; }

    /// <summary>Inherited listening sockets (file descriptor numbers), one Kestrel endpoint each.</summary>
    public int[] ListenFds { get; set; } = [];

    /// <summary>Display names of the listeners, same order as <see cref="ListenFds"/>.</summary>
    public string[] ListenNames { get; set; } = [];

    /// <summary>The worker's end of the control channel (a unix socketpair).</summary>
    public int ControlFd { get; set; } = -1;

    public WorkerClass WorkerClass { get; set; } = WorkerClass.Async;
    public int Threads { get; set; } = 1;
    public int WorkerConnections { get; set; } = 1000;
    public double KeepAlive { get; set; } = 2;
    public double GracefulTimeout { get; set; } = 30;

    /// <summary>--request-timeout in seconds: a request's RequestAborted fires after this long, and it is answered 504 (0: no deadline).</summary>
    public double RequestTimeout { get; set; }

    /// <summary>--request-timeout-grace in seconds: a request still running this long after its deadline is hung (reported to the master).</summary>
    public double RequestTimeoutGrace { get; set; } = 3;

    /// <summary>Requests after which the worker asks to be recycled (jitter already applied); 0 = never.</summary>
    public long MaxRequests { get; set; }

    /// <summary>--max-worker-memory in bytes: above it after a full collection, the worker stops accepting and asks to be recycled; 0 = never.</summary>
    public long MaxWorkerMemory { get; set; }

    /// <summary>
    /// --spare-workers: this worker is a spare. It boots, warms up and reports ready like the others, but
    /// takes no connection from the listening sockets until the master promotes it with SIGUSR2.
    /// </summary>
    public bool Spare { get; set; }

    /// <summary>--warmup-requests and --warmup-path: what a new worker serves before it reports ready.</summary>
    public WarmupOptions Warmup { get; set; } = new();

    /// <summary>--accept-policy pack (async workers only): the abstract unix socket name whose holder takes new connections first; null: every idle worker accepts.</summary>
    public string? AcceptLeader { get; set; }

    /// <summary>--pack-leader-connections: past this many open connections the leader lets another worker lead (0: no cap).</summary>
    public int PackLeaderConnections { get; set; }

    /// <summary>What one request may send (--limit-request-*), as Kestrel groups its KestrelServerLimits.</summary>
    public RequestLimits Limits { get; set; } = new();

    /// <summary>--backlog: the queue length each worker passes to listen(2) on the inherited sockets (Kestrel listens again).</summary>
    public int Backlog { get; set; } = 2048;

    /// <summary>The error log and the access log.</summary>
    public LogOptions Logs { get; set; } = new();

    /// <summary>Which proxies are believed, and how they say who the client is.</summary>
    public ProxyOptions Proxy { get; set; } = new();

    /// <summary>--certfile / --keyfile / --ca-certs: TLS on every listener. Null: plain HTTP.</summary>
    public TlsFiles? Tls { get; set; }

    /// <summary>--http-protocols as given (h1, h2, h2,h1). Null: what the app configures, else Kestrel's default.</summary>
    public string? HttpProtocols { get; set; }

    /// <summary>--statsd-host and its prefix and tags. Null: no statsd.</summary>
    public StatsdOptions? Statsd { get; set; }

    /// <summary>
    /// The master's private folder (mode 0700) where each worker also listens, on PID.sock, for the
    /// requests of SignalR connections that other workers forward to it (Http/Affinity). Null: none.
    /// </summary>
    public string? AffinityDir { get; set; }

    /// <summary>The worker's process name (-n/--name: "NAME: worker", else "corral: worker"). Null: left as it is.</summary>
    public string? ProcessTitle { get; set; }

    /// <summary>-u/--user and -g/--group, resolved by the master: who the worker becomes before the app runs. Null: it stays who the master is.</summary>
    public WorkerUser? User { get; set; }

    /// <summary>
    /// --jit-profile on: the app's multicore JIT profile, a full path in a folder the master owns (the worker
    /// replays it, records its own beside it and puts that in its place at a graceful exit). Null: none,
    /// and not written: an agent that does not know it (a Native AOT app's older copy) has nothing to compile anyway.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? JitProfile { get; set; }

    public string ToJson() => JsonSerializer.Serialize(this, AgentJsonContext.Default.AgentOptions);

    public static AgentOptions FromJson(string json) =>
        JsonSerializer.Deserialize(json, AgentJsonContext.Default.AgentOptions)
        ?? throw new InvalidOperationException($"{EnvironmentVariable} holds no options");
}

[JsonSerializable(typeof(AgentOptions))]
internal sealed partial class AgentJsonContext : JsonSerializerContext;

/// <summary>--limit-request-line, --limit-request-fields, --limit-request-field_size, --limit-request-headers-size (0: no limit of corral's).</summary>
public sealed class RequestLimits
{
    public int RequestLine { get; set; } = 4094;
    public int RequestFields { get; set; } = 100;
    public int RequestFieldSize { get; set; } = 8190;

    /// <summary>The most bytes of header fields one request may send (Kestrel's MaxRequestHeadersTotalSize).</summary>
    public int RequestHeadersSize { get; set; } = 65536;
}

/// <summary>--warmup-requests, --warmup-path, and the time the warm-up may take.</summary>
public sealed class WarmupOptions
{
    /// <summary>In-memory GET requests a new worker serves before it reports ready; 0 = none.</summary>
    public int Requests { get; set; }

    /// <summary>--warmup-path, in the order given: the warm-up requests take them in turn.</summary>
    public string[] Paths { get; set; } = ["/"];

    /// <summary>Seconds the warm-up may take at most (half of --timeout): then the worker reports ready anyway.</summary>
    public double Timeout { get; set; } = 15;
}

/// <summary>--error-logfile, --log-level, --access-logfile, --access-logformat, --access-log-json.</summary>
public sealed class LogOptions
{
    /// <summary>The error log (a full path); null: stderr.</summary>
    public string? ErrorLogFile { get; set; }
    public string Level { get; set; } = "info";

    /// <summary>The access log (a full path, or "-" for stdout); null: none.</summary>
    public string? AccessLogFile { get; set; }
    public string AccessLogFormat { get; set; } = "";

    /// <summary>--access-log-json: one JSON object per line instead of <see cref="AccessLogFormat"/>.</summary>
    public bool AccessLogJson { get; set; }
}

/// <summary>--forwarded-allow-ips, --proxy-protocol, --secure-scheme-headers.</summary>
public sealed class ProxyOptions
{
    /// <summary>The peers whose X-Forwarded-For and scheme headers are believed.</summary>
    public string ForwardedAllowIps { get; set; } = DefaultAllowIps;

    /// <summary>--forwarded-allow-ips' default, as Gunicorn's.</summary>
    public const string DefaultAllowIps = "127.0.0.1";

    /// <summary>Connections from <see cref="ForwardedAllowIps"/> peers start with a PROXY v1/v2 header.</summary>
    public bool ProxyProtocol { get; set; }

    /// <summary>Header name to the value that means the request came over TLS.</summary>
    public Dictionary<string, string> SecureSchemeHeaders { get; set; } = [];
}

/// <summary>The PEM files of --certfile, --keyfile and --ca-certs, as full paths.</summary>
public sealed class TlsFiles
{
    public required string CertFile { get; set; }

    /// <summary>Null: the key is in <see cref="CertFile"/>.</summary>
    public string? KeyFile { get; set; }

    /// <summary>A CA bundle: client certificates are required and must chain to it. Null: none asked.</summary>
    public string? CaCerts { get; set; }
}

/// <summary>--statsd-host (resolved by the master), --statsd-prefix, --dogstatsd-tags.</summary>
public sealed class StatsdOptions
{
    /// <summary>IP:PORT, [IPv6]:PORT or unix:PATH: no worker looks the name up again.</summary>
    public required string Host { get; set; }

    /// <summary>Normalised: empty, or ending in one '.'.</summary>
    public string Prefix { get; set; } = "";
    public string? Tags { get; set; }
}

/// <summary>
/// -u/--user and -g/--group as numbers: the worker sets its supplementary groups, its group and its
/// user to these (real, effective and saved) before anything of the app runs.
/// </summary>
public sealed class WorkerUser
{
    public uint Uid { get; set; }
    public uint Gid { get; set; }

    /// <summary>The supplementary groups: the user's groups in the user database (initgroups(3)), or just <see cref="Gid"/>.</summary>
    public uint[] Groups { get; set; } = [];

    /// <summary>The user as messages name it: "nobody", or the uid when it has no name.</summary>
    public string Name { get; set; } = "";
}
