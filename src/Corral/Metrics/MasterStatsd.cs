using System.Diagnostics;
using Corral.Agent.Metrics;
using Corral.Logging;
using Corral.Settings;

namespace Corral.Metrics;

/// <summary>
/// --statsd-host in the master: gunicorn.workers (a gauge of the worker processes, booting and
/// stopping ones included, as Gunicorn counts them) on every change and every second, and
/// gunicorn.log.LEVEL for the master's warning, error and critical lines. Runs on the master's loop;
/// the client sends from its own timer. A reload that changes the statsd settings starts a new client.
/// </summary>
public sealed class MasterStatsd : IDisposable
{
    public static readonly TimeSpan GaugeInterval = TimeSpan.FromSeconds(1);

    private readonly MasterLog _log;
    private StatsdClient? _client;
    private (string? Target, string Prefix, string? Tags) _settings;
    private int _lastWorkers = -1;
    private long _lastGauge;

    public MasterStatsd(MasterLog log, CorralConfig config)
    {
        _log = log;
        Configure(config);
    }

    private void Configure(CorralConfig config)
    {
        var settings = (config.StatsdTarget, config.StatsdPrefix, config.DogstatsdTags);
        if (settings == _settings)
        {
            return;
        }
        _settings = settings;
        _log.Statsd = null;
        _client?.Dispose();
        _client = null;
        _lastWorkers = -1;
        if (settings.StatsdTarget is { } target)
        {
            _client = new StatsdClient(target, settings.StatsdPrefix, settings.DogstatsdTags, _log.Warning);
            _log.Statsd = _client;
            _log.Info($"Statsd at: {_client.Target} ({config.StatsdHost})");
        }
    }

    /// <summary>After every event of the master's loop (ticks included, so the gauge is also sent when nothing changes).</summary>
    public void AfterEvent(CorralConfig config, int workers)
    {
        Configure(config);
        if (_client is null)
        {
            return;
        }
        if (workers != _lastWorkers || Stopwatch.GetElapsedTime(_lastGauge) >= GaugeInterval)
        {
            _client.Gauge(StatsdMetrics.Workers, workers);
            _lastWorkers = workers;
            _lastGauge = Stopwatch.GetTimestamp();
        }
    }

    public void Dispose()
    {
        _log.Statsd = null;
        _client?.Dispose();
        _client = null;
    }
}
