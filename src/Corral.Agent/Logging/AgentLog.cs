using System.Globalization;
using Corral.Agent.Metrics;

namespace Corral.Agent.Logging;

/// <summary>
/// The error log of the master and of the workers: Gunicorn's line format
/// ("[2024-01-01 12:00:00 +0000] [PID] [INFO] text"), to --error-logfile or stderr. Reopened on USR1.
/// </summary>
public sealed class AgentLog
{
    private static readonly string[] Levels = ["debug", "info", "warning", "error", "critical"];

    private readonly int _minLevel;
    private readonly LogFile _file;

    public AgentLog(string? path, string level)
    {
        _minLevel = Math.Max(0, Array.IndexOf(Levels, level));
        _file = new LogFile(path, stdout: false);
    }

    public void Debug(string text) => Write(0, text);
    public void Info(string text) => Write(1, text);
    public void Warning(string text) => Write(2, text);
    public void Error(string text) => Write(3, text);
    public void Critical(string text) => Write(4, text);

    /// <summary>USR1: reopens the file; if that fails, says so and keeps writing to the old one.</summary>
    public void Reopen()
    {
        if (_file.Reopen() is { } error)
        {
            Error($"Cannot reopen the error log, still writing to the old file: {error}");
        }
    }

    /// <summary>--statsd-host: warning, error and critical lines count as gunicorn.log.LEVEL (whatever --log-level lets through, as Gunicorn).</summary>
    public StatsdClient? Statsd { get; set; }

    private void Write(int level, string text)
    {
        if (level >= 2 && Statsd is { } statsd && StatsdMetrics.ForLogLevel(Levels[level]) is { } metric)
        {
            statsd.Increment(metric);
        }
        if (level >= _minLevel)
        {
            _file.Write([Format(DateTimeOffset.Now, Environment.ProcessId, Levels[level], text)]);
        }
    }

    /// <summary>One error-log line, Gunicorn's layout.</summary>
    public static string Format(DateTimeOffset time, int pid, string level, string text) =>
        string.Create(CultureInfo.InvariantCulture,
            $"[{time:yyyy-MM-dd HH:mm:ss} {FormatOffset(time.Offset)}] [{pid}] [{level.ToUpperInvariant()}] {text}");

    /// <summary>strftime's %z: +0000, -0700.</summary>
    public static string FormatOffset(TimeSpan offset)
    {
        var sign = offset < TimeSpan.Zero ? '-' : '+';
        var abs = offset.Duration();
        return string.Create(CultureInfo.InvariantCulture, $"{sign}{abs.Hours:00}{abs.Minutes:00}");
    }
}
