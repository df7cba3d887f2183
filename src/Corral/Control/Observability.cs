using System.Net.Sockets;
using Corral.Logging;
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
    /// <param name="controlSocket">The control socket path (after a USR2 upgrade, the new master's own).</param>
    /// <param name="deferMetrics">After a USR2 upgrade the old master still holds the metrics port: <see cref="StartMetrics"/> later.</param>
    /// <param name="queue">The listeners' accept queues (the master's one reader, which also feeds -w MIN:MAX).</param>
    public static Observability? Start(CorralConfig config, string? controlSocket, bool deferMetrics, ListenQueue queue, IMasterLog log, Action<MasterEvent> post)
    {
        var o = new Observability(new Observatory(queue, new MasterMetrics()));
        if (controlSocket is { } path)
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
        if (!deferMetrics && !o.StartMetrics(config, log, post))
        {
            o.Dispose();
            return null;
        }
        return o;
    }

    /// <summary>Serves --metrics-bind, if set; false (after logging why) if the port cannot be had.</summary>
    public bool StartMetrics(CorralConfig config, IMasterLog log, Action<MasterEvent> post)
    {
        if (_metrics is not null || config.MetricsBind is not { } bind || MetricsServer.ParseBind(bind, out _) is not { } endpoint)
        {
            return true;
        }
        try
        {
            _metrics = MetricsServer.StartAsync(endpoint, Observatory.Metrics, post).GetAwaiter().GetResult();
            log.Info($"Metrics at: {_metrics.Url}/metrics");
            return true;
        }
        catch (IOException e)
        {
            log.Error($"Can't serve metrics at {bind}: {e.Message}");
            return false;
        }
    }

    /// <summary>After a USR2 upgrade, once this master owns the pid file: PIDFILE.2.ctl becomes PIDFILE.ctl.</summary>
    public void MoveControlSocket(string from, string to, IMasterLog log)
    {
        if (_control is null || _control.Path != Path.GetFullPath(from))
        {
            return;
        }
        try
        {
            _control.MoveTo(Path.GetFullPath(to));
            log.Info($"Control socket at: {_control.Path}");
        }
        catch (IOException e)
        {
            log.Warning($"Can't rename the control socket {from} to {to}: {e.Message}; it stays at {from}");
        }
    }

    public void Dispose()
    {
        _control?.Dispose();
        _metrics?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
