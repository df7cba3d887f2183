using Corral.Agent.Logging;
using Corral.Agent.Metrics;


namespace Corral.Logging;

/// <summary>The master's error log: the same writer and line format as the workers' (Gunicorn's).</summary>
public sealed class MasterLog(string errorLog, string level) : IMasterLog
{
    private readonly AgentLog _log = new(errorLog == "-" ? null : Path.GetFullPath(errorLog), level);

    public void Debug(string text) => _log.Debug(text);
    public void Info(string text) => _log.Info(text);
    public void Warning(string text) => _log.Warning(text);
    public void Error(string text) => _log.Error(text);
    public void Critical(string text) => _log.Critical(text);
    public void Reopen()
    {
        _log.Reopen();
        Reopened?.Invoke();
    }

    /// <summary>After USR1's reopen, before the workers are told (-u/-g: the new files are handed over to their user).</summary>
    public Action? Reopened { get; set; }

    /// <summary>--statsd-host: the master's warning, error and critical lines are counted (gunicorn.log.LEVEL).</summary>
    public StatsdClient? Statsd
    {
        get => _log.Statsd;
        set => _log.Statsd = value;
    }
}
