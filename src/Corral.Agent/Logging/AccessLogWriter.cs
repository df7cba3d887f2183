using System.Threading.Channels;

namespace Corral.Agent.Logging;

/// <summary>Writes access-log lines off the request path, to a file (append) or stdout; reopened on USR1.</summary>
internal sealed class AccessLogWriter
{
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly LogFile _file;

    public static AccessLogWriter? Current { get; private set; }

    public AccessLogWriter(string path)
    {
        _file = new LogFile(path, stdout: true);
        Current = this;
        _ = Task.Run(PumpAsync);
    }

    public void Write(string line) => _lines.Writer.TryWrite(line);

    /// <summary>USR1: reopens the file; if that fails, says so in the error log and keeps writing to the old one.</summary>
    public void Reopen()
    {
        if (_file.Reopen() is { } error)
        {
            AgentRuntime.Log.Error($"Cannot reopen the access log, still writing to the old file: {error}");
        }
    }

    /// <summary>Writes what is queued now (also on a quick exit).</summary>
    public void Flush()
    {
        var batch = new List<string>();
        while (_lines.Reader.TryRead(out var line))
        {
            batch.Add(line);
        }
        _file.Write(batch);
    }

    private async Task PumpAsync()
    {
        while (await _lines.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // A failure must not end the pump (the access log would stop for good).
            Background.Run("Access log", Flush);
        }
    }
}
