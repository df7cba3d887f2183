using System.Net.Sockets;
using Corral.Arbiter;
using Corral.Listeners;
using Corral.Metrics;
using Corral.Settings;

namespace Corral.Control;

/// <summary>
/// What the master starts for observers: the <see cref="Metrics.Observatory"/> (always: it keeps the
/// totals), the control socket (--control-socket, or PIDFILE.ctl) and the metrics server (--metrics-bind).
/// </summary>
public sealed class Observability : IDisposable
{
    private ControlServer? _control;
    private MetricsServer? _metrics;

    private Observability(Observatory observatory) => Observatory = observatory;

    public Observatory Observatory { get; }

    /// <summary>Starts them; null (after logging why) if a socket cannot be bound: the master then exits 1.</summary>
    public static Observability? Start(CorralConfig config, IReadOnlyList<Listener> listeners, IMasterLog log, Action<MasterEvent> post)
    {
        var o = new Observability(new Observatory(new ListenQueue(listeners), new MasterMetrics()));
        if (config.ControlSocket is { } path)
        {
            var full = Path.GetFullPath(path);
            try
            {
                o._control = ControlServer.Start(full, post);
                log.Info($"Control socket at: {full}");
            }
            catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
            {
                log.Error($"Can't create the control socket {full}: {e.Message}");
                o.Dispose();
                return null;
            }
        }
        if (config.MetricsBind is { } bind && MetricsServer.ParseBind(bind, out _) is { } endpoint)
        {
            try
            {
                o._metrics = MetricsServer.StartAsync(endpoint, o.Observatory.Metrics, post).GetAwaiter().GetResult();
                log.Info($"Metrics at: {o._metrics.Url}/metrics");
            }
            catch (IOException e)
            {
                log.Error($"Can't serve metrics at {bind}: {e.Message}");
                o.Dispose();
                return null;
            }
        }
        return o;
    }

    public void Dispose()
    {
        _control?.Dispose();
        _metrics?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
