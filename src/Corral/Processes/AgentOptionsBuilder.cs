using Corral.Agent.Contract;
using Corral.Agent.Http;
using Corral.Listeners;
using Corral.Settings;

namespace Corral.Processes;

/// <summary>
/// Maps the master's settings onto what one worker is told (<see cref="AgentOptions"/>): paths made
/// full (workers run in the app's folder), --max-requests jittered per worker, the accept leader's name
/// for the classes that pack accepts, half of --timeout for the warm-up.
/// </summary>
public static class AgentOptionsBuilder
{
    /// <param name="listeners">The listeners the worker inherits (their descriptors and names).</param>
    /// <param name="controlFd">The worker's end of its control socketpair.</param>
    /// <param name="acceptLeader">The abstract socket name whose holder leads the accepts (--accept-policy pack).</param>
    /// <param name="errorLogPath">--error-logfile as a full path; null: stderr.</param>
    public static AgentOptions Build(CorralConfig config, IReadOnlyList<Listener> listeners, int controlFd, string acceptLeader, string? errorLogPath)
    {
        var maxRequests = config.MaxRequests;
        if (maxRequests > 0 && config.MaxRequestsJitter > 0)
        {
            maxRequests += Random.Shared.NextInt64(0, config.MaxRequestsJitter + 1);
        }
        return new AgentOptions
        {
            Protocol = AgentOptions.CurrentProtocol,
            ListenFds = [.. listeners.Select(l => l.Fd)],
            ListenNames = [.. listeners.Select(l => l.Name)],
            ControlFd = controlFd,
            WorkerClass = config.WorkerClass.Class,
            Threads = config.Threads,
            WorkerConnections = config.WorkerConnections,
            AcceptLeader = config.WorkerClass.PacksAccepts && config.AcceptPolicy == AcceptPolicy.Pack ? acceptLeader : null,
            // One worker has no one to hand the lead to: past a cap it would take each connection late (Patience).
            PackLeaderConnections = config.Workers > 1 ? config.PackLeaderConnections : 0,
            KeepAlive = config.KeepAlive,
            GracefulTimeout = config.GracefulTimeout.TotalSeconds,
            RequestTimeout = config.RequestTimeout.TotalSeconds,
            RequestTimeoutGrace = config.RequestTimeoutGrace.TotalSeconds,
            MaxRequests = maxRequests,
            MaxWorkerMemory = config.MaxWorkerMemory,
            Warmup = new WarmupOptions
            {
                Requests = config.WarmupRequests,
                Paths = [.. config.WarmupPaths],
                // Within the boot timeout, with room left for the boot itself.
                Timeout = config.Timeout > TimeSpan.Zero ? config.Timeout.TotalSeconds / 2 : 30,
            },
            Limits = new RequestLimits
            {
                RequestLine = config.LimitRequestLine,
                RequestFields = config.LimitRequestFields,
                RequestFieldSize = config.LimitRequestFieldSize,
                RequestHeadersSize = config.LimitRequestHeadersSize,
            },
            Backlog = config.Backlog,
            ProcessTitle = Agent.Os.ProcessTitle.For(config.ProcName, "worker"),
            Logs = new LogOptions
            {
                AccessLogFile = config.AccessLog is null or "-" ? config.AccessLog : Path.GetFullPath(config.AccessLog),
                AccessLogFormat = config.AccessLogFormat,
                AccessLogJson = config.AccessLogJson,
                ErrorLogFile = errorLogPath,
                Level = config.LogLevel,
            },
            Proxy = new ProxyOptions
            {
                ForwardedAllowIps = config.ForwardedAllowIps,
                ProxyProtocol = config.ProxyProtocol,
                SecureSchemeHeaders = ProxyTrust.TryParseSchemeHeaders(config.SecureSchemeHeaders, out var schemeHeaders, out _) ? schemeHeaders : [],
            },
            HttpProtocols = config.HttpProtocols,
            Tls = config.CertFile is null ? null : new TlsFiles
            {
                CertFile = Path.GetFullPath(config.CertFile),
                KeyFile = config.KeyFile is null ? null : Path.GetFullPath(config.KeyFile),
                CaCerts = config.CaCerts is null ? null : Path.GetFullPath(config.CaCerts),
            },
            Statsd = string.IsNullOrEmpty(config.StatsdTarget) ? null : new StatsdOptions
            {
                Host = config.StatsdTarget,
                Prefix = config.StatsdPrefix,
                Tags = config.DogstatsdTags,
            },
            User = config.WorkerUser?.ToAgent(),
        };
    }
}
