using System.Globalization;

namespace Corral.Agent.Contract;

/// <summary>
/// The control channel between master and worker: one line of text per message over an inherited
/// unix socketpair. Worker to master only; the master speaks to workers with signals, as Gunicorn's does.
/// </summary>
public static class Protocol
{
    /// <summary>Kestrel listens on every inherited socket: the worker can take requests.</summary>
    public const string Ready = "ready";

    /// <summary>
    /// "hb SERVED INFLIGHT BUSY_MS SENT_MS": sent from the thread pool every <see cref="HeartbeatInterval"/>.
    /// SENT_MS is the worker's CLOCK_MONOTONIC in milliseconds (<see cref="MonotonicMs"/>), one clock for every
    /// process of the host: the master judges a worker by when it sent, not by when the master read it.
    /// </summary>
    public const string Heartbeat = "hb";

    /// <summary>"error TEXT": the worker cannot boot (or is about to die); TEXT is one line.</summary>
    public const string Error = "error";

    /// <summary>
    /// "recycle" or "recycle REASON": start my successor, then stop me. Alone: the worker has served
    /// --max-requests; with <see cref="OutOfMemory"/>: its app threw OutOfMemoryException; with <see cref="Memory"/>: it is above --max-worker-memory.
    /// </summary>
    public const string Recycle = "recycle";

    /// <summary>The reason of a "recycle" line whose app ran out of memory.</summary>
    public const string OutOfMemory = "oom";

    /// <summary>The reason of a "recycle" line whose worker is above --max-worker-memory after a full collection (it already takes no new connection).</summary>
    public const string Memory = "memory";

    /// <summary>"stats {JSON}": the worker's cumulative request counts and memory (<see cref="WorkerStats.Format"/>), every second and once more at exit.</summary>
    public const string Stats = "stats";

    /// <summary>"serving {JSON}": once, just before "ready": the listeners' protocols and the app's URLs they replaced (<see cref="ServingReport"/>).</summary>
    public const string Serving = "serving";

    /// <summary>
    /// "hung TID METHOD PATH REQUEST_ID": a request still runs past --request-timeout and its grace. TID is
    /// the OS thread id (gettid) of the thread that entered the handler; PATH is escaped as in a URL (no
    /// spaces); REQUEST_ID is HttpContext.TraceIdentifier, whitespace replaced by '_'. Once per request.
    /// </summary>
    public const string Hung = "hung";

    /// <summary>
    /// "starved DELAY_MS" or "starved DELAY_MS TEXT": the worker's thread pool is starved, queued work has
    /// waited DELAY_MS; once per episode. TEXT (one line, optional): what the worker is serving.
    /// </summary>
    public const string Starved = "starved";

    public static string FormatStarved(long delayMs, string? serving) =>
        string.Create(CultureInfo.InvariantCulture, $"{Starved} {delayMs}")
        + (string.IsNullOrWhiteSpace(serving) ? "" : " " + serving.ReplaceLineEndings(" | ").Trim());

    public static readonly TimeSpan StatsInterval = TimeSpan.FromSeconds(1);

    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromMilliseconds(500);

    public static string FormatHeartbeat(long served, int inFlight, long busyMs, long sentMs) =>
        string.Create(CultureInfo.InvariantCulture, $"{Heartbeat} {served} {inFlight} {busyMs} {sentMs}");

    /// <summary>A monotonic timestamp (<see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>: CLOCK_MONOTONIC on Linux) in milliseconds.</summary>
    public static long MonotonicMs(long timestamp, long frequency) => (long)((Int128)timestamp * 1000 / frequency);

    /// <summary>The <see cref="Hung"/> line; <paramref name="path"/> and <paramref name="requestId"/> are made single tokens.</summary>
    public static string FormatHung(int osThreadId, string method, string path, string requestId) =>
        string.Create(CultureInfo.InvariantCulture, $"{Hung} {osThreadId} {Token(method)} {Token(path.Length == 0 ? "/" : path)} {Token(requestId.Length == 0 ? "-" : requestId)}");

    /// <summary>One word of a control line: whitespace and control characters become '_'.</summary>
    private static string Token(string text)
    {
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                return string.Create(text.Length, text, static (span, t) =>
                {
                    for (var i = 0; i < t.Length; i++)
                    {
                        span[i] = char.IsWhiteSpace(t[i]) || char.IsControl(t[i]) ? '_' : t[i];
                    }
                });
            }
        }
        return text;
    }

    public static string FormatError(string text) =>
        Error + " " + text.ReplaceLineEndings(" | ").Trim();

    /// <summary>Parses one line; unknown or malformed lines yield <c>null</c> (and are ignored by the master).</summary>
    public static Message? Parse(string line)
    {
        if (line == Ready)
        {
            return new Message(MessageKind.Ready);
        }
        if (line == Recycle)
        {
            return new Message(MessageKind.Recycle);
        }
        if (line.StartsWith(Recycle + " ", StringComparison.Ordinal))
        {
            return new Message(MessageKind.Recycle, Text: line[(Recycle.Length + 1)..]);
        }
        if (line.StartsWith(Error + " ", StringComparison.Ordinal))
        {
            return new Message(MessageKind.Error, Text: line[(Error.Length + 1)..]);
        }
        if (line.StartsWith(Stats + " ", StringComparison.Ordinal))
        {
            return new Message(MessageKind.Stats, Text: line[(Stats.Length + 1)..]);
        }
        if (line.StartsWith(Serving + " ", StringComparison.Ordinal))
        {
            return new Message(MessageKind.Serving, Text: line[(Serving.Length + 1)..]);
        }
        if (line.StartsWith(Hung + " ", StringComparison.Ordinal))
        {
            var parts = line.Split(' ');
            if (parts.Length == 5 && parts[2].Length > 0 && parts[3].Length > 0 && parts[4].Length > 0
                && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var tid))
            {
                return new Message(MessageKind.Hung, Hung: new HungRequest(tid, parts[2], parts[3], parts[4]));
            }
            return null;
        }
        if (line.StartsWith(Starved + " ", StringComparison.Ordinal))
        {
            var rest = line[(Starved.Length + 1)..];
            var space = rest.IndexOf(' ', StringComparison.Ordinal);
            var number = space < 0 ? rest : rest[..space];
            if (long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var delayMs))
            {
                var text = space < 0 ? null : rest[(space + 1)..].Trim();
                return new Message(MessageKind.Starved, BusyMs: delayMs, Text: string.IsNullOrEmpty(text) ? null : text);
            }
            return null;
        }
        if (line.StartsWith(Heartbeat + " ", StringComparison.Ordinal))
        {
            var parts = line.Split(' ');
            if (parts.Length == 5
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var served)
                && int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var inFlight)
                && long.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var busyMs)
                && long.TryParse(parts[4], NumberStyles.None, CultureInfo.InvariantCulture, out var sentMs))
            {
                return new Message(MessageKind.Heartbeat, served, inFlight, busyMs, SentMs: sentMs);
            }
        }
        return null;
    }
}

/// <summary>The kinds of line; <see cref="Starved"/> carries its delay in <see cref="Message.BusyMs"/> and what is served in <see cref="Message.Text"/>.</summary>
public enum MessageKind { Ready, Heartbeat, Error, Recycle, Stats, Serving, Hung, Starved }

/// <summary>
/// One parsed line; <paramref name="SentMs"/> is the heartbeat's send time (<see cref="Protocol.MonotonicMs"/>), 0 when unknown;
/// <paramref name="Hung"/> is a <see cref="MessageKind.Hung"/> line's request.
/// </summary>
public sealed record Message(MessageKind Kind, long Served = 0, int InFlight = 0, long BusyMs = 0, string? Text = null, long SentMs = 0, HungRequest? Hung = null);

/// <summary>A request that ran past --request-timeout and its grace: the thread that entered its handler (OS thread id), and what it was.</summary>
public sealed record HungRequest(int OsThreadId, string Method, string Path, string RequestId);
