
namespace Corral.Agent.Metrics;

/// <summary>Gunicorn's statsd metric names (gunicorn/instrument/statsd.py), so its dashboards keep working.</summary>
public static class StatsdMetrics
{
    public const string Requests = "gunicorn.requests";
    public const string RequestDuration = "gunicorn.request.duration";
    public const string RequestStatusPrefix = "gunicorn.request.status.";
    public const string Workers = "gunicorn.workers";
    public const string LogCritical = "gunicorn.log.critical";
    public const string LogError = "gunicorn.log.error";
    public const string LogWarning = "gunicorn.log.warning";
    public const string LogException = "gunicorn.log.exception";

    /// <summary>The log counter of an error-log level; null for levels that are not counted (debug, info).</summary>
    public static string? ForLogLevel(string level) => level switch
    {
        "warning" => LogWarning,
        "error" => LogError,
        "critical" => LogCritical,
        _ => null,
    };
}
