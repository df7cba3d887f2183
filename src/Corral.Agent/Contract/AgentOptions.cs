using System.Text.Json;
using System.Text.Json.Serialization;
using Corral.Agent.Http;

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
    public const int CurrentProtocol = 2; // 2: heartbeats carry their send time

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

    /// <summary>Requests after which the worker asks to be recycled (jitter already applied); 0 = never.</summary>
    public long MaxRequests { get; set; }

    /// <summary>--warmup-requests: in-memory GET requests a new worker serves before it reports ready; 0 = none.</summary>
    public int WarmupRequests { get; set; }

    /// <summary>--warmup-path, in the order given: the warm-up requests take them in turn.</summary>
    public string[] WarmupPaths { get; set; } = ["/"];

    /// <summary>Seconds the warm-up may take at most (half of --timeout): then the worker reports ready anyway.</summary>
    public double WarmupTimeout { get; set; } = 15;

    /// <summary>--accept-policy pack (async workers only): the abstract unix socket name whose holder takes new connections first; null: every idle worker accepts.</summary>
    public string? AcceptLeader { get; set; }

    public int LimitRequestLine { get; set; } = 4094;
    public int LimitRequestFields { get; set; } = 100;
    public int LimitRequestFieldSize { get; set; } = 8190;

    /// <summary>--limit-request-headers-size: the most bytes of header fields one request may send (Kestrel's MaxRequestHeadersTotalSize).</summary>
    public int LimitRequestHeadersSize { get; set; } = 65536;

    /// <summary>--backlog: the queue length each worker passes to listen(2) on the inherited sockets (Kestrel listens again).</summary>
    public int Backlog { get; set; } = 2048;

    public string? AccessLogFile { get; set; }
    public string AccessLogFormat { get; set; } = "";

    /// <summary>--access-log-json: one JSON object per line instead of <see cref="AccessLogFormat"/>.</summary>
    public bool AccessLogJson { get; set; }
    public string? ErrorLogFile { get; set; }
    public string LogLevel { get; set; } = "info";

    /// <summary>--forwarded-allow-ips: the peers whose X-Forwarded-For and scheme headers are believed.</summary>
    public string ForwardedAllowIps { get; set; } = ProxyTrust.DefaultAllowIps;

    /// <summary>--proxy-protocol: connections from --forwarded-allow-ips peers start with a PROXY v1/v2 header.</summary>
    public bool ProxyProtocol { get; set; }

    /// <summary>--secure-scheme-headers: header name to the value that means the request came over TLS.</summary>
    public Dictionary<string, string> SecureSchemeHeaders { get; set; } = [];

    /// <summary>--certfile / --keyfile (PEM, full paths): serve TLS on every listener. Null: plain HTTP.</summary>
    public string? CertFile { get; set; }
    public string? KeyFile { get; set; }

    /// <summary>--ca-certs (PEM bundle, full path): client certificates are required and must chain to it.</summary>
    public string? CaCerts { get; set; }

    /// <summary>--statsd-host, resolved by the master (IP:PORT, [IPv6]:PORT or unix:PATH); null: no statsd.</summary>
    public string? StatsdHost { get; set; }

    /// <summary>--statsd-prefix, normalised (empty, or ending in one '.'), and --dogstatsd-tags.</summary>
    public string StatsdPrefix { get; set; } = "";
    public string? DogstatsdTags { get; set; }

    public string ToJson() => JsonSerializer.Serialize(this, AgentJsonContext.Default.AgentOptions);

    public static AgentOptions FromJson(string json) =>
        JsonSerializer.Deserialize(json, AgentJsonContext.Default.AgentOptions)
        ?? throw new InvalidOperationException($"{EnvironmentVariable} holds no options");
}

[JsonSerializable(typeof(AgentOptions))]
internal sealed partial class AgentJsonContext : JsonSerializerContext;
