using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Corral.Agent.Metrics;

/// <summary>
/// A statsd client that never holds up its caller: metrics are noted under a short lock (counters
/// added up, one duration per request kept) and sent from a timer as multi-metric datagrams. A send
/// that fails (nothing listening, a full unix socket queue) drops that datagram; the first failure is
/// logged once.
/// </summary>
public sealed class StatsdClient : IDisposable
{
    public const int MaxDatagramBytes = 1400;
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(150);

    /// <summary>Durations waiting that make a flush start at once rather than at the next tick.</summary>
    public const int FlushAtDurations = 2048;

    /// <summary>Durations kept at most while the sender is behind; more are dropped (their counters still count).</summary>
    public const int MaxPendingDurations = 100_000;

    private readonly object _lock = new();
    private readonly object _sendLock = new();
    private readonly Socket _socket;
    private readonly EndPoint _target;
    private readonly string _prefix;
    private readonly string? _tags;
    private readonly Action<string>? _warn;
    private readonly Timer _timer;
    private List<double> _durations = [];
    private long _requests;
    private Dictionary<int, long> _statuses = [];
    private Dictionary<string, long> _counters = [];
    private Dictionary<string, long> _gauges = [];
    private int _flushQueued;
    private long _sent;
    private long _failed;
    private int _warned;
    private int _disposed;

    /// <param name="target">A --statsd-host as the master resolved it: IP:PORT, [IPv6]:PORT or unix:PATH.</param>
    /// <param name="prefix">Already normalised (<see cref="StatsdFormat.NormalizePrefix"/>).</param>
    /// <param name="warn">Told, once, that sending failed.</param>
    /// <param name="flushInterval">How often the timer sends (default <see cref="FlushInterval"/>; infinite: only <see cref="Flush"/>).</param>
    public StatsdClient(string target, string prefix, string? tags, Action<string>? warn, TimeSpan? flushInterval = null)
    {
        _target = EndPointOf(target);
        _prefix = prefix;
        _tags = string.IsNullOrEmpty(tags) ? null : tags;
        _warn = warn;
        Target = target;
        _socket = _target is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified)
            : new Socket(_target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        // A full unix-socket queue must drop a datagram, never block the sender.
        _socket.Blocking = false;
        var interval = flushInterval ?? FlushInterval;
        _timer = new Timer(static s => ((StatsdClient)s!).FlushGuarded(), this, interval, interval);
    }

    /// <summary>The endpoint of a resolved --statsd-host (IP:PORT, [IPv6]:PORT or unix:PATH).</summary>
    private static EndPoint EndPointOf(string resolved) =>
        resolved.StartsWith("unix:", StringComparison.Ordinal)
            ? new UnixDomainSocketEndPoint(resolved["unix:".Length..])
            : IPEndPoint.Parse(resolved);

    public string Target { get; }

    /// <summary>Datagrams sent, and sends that failed (for tests and diagnostics).</summary>
    public long Sent => Interlocked.Read(ref _sent);
    public long Failed => Interlocked.Read(ref _failed);
    /// <summary>One request: gunicorn.requests, gunicorn.request.status.CODE, gunicorn.request.duration.</summary>
    public void Request(int status, TimeSpan duration)
    {
        bool flushNow;
        lock (_lock)
        {
            _requests++;
            _statuses[status] = _statuses.GetValueOrDefault(status) + 1;
            if (_durations.Count < MaxPendingDurations)
            {
                _durations.Add(duration.TotalMilliseconds);
            }
            flushNow = _durations.Count >= FlushAtDurations;
        }
        if (flushNow && Interlocked.Exchange(ref _flushQueued, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static c => c.FlushGuarded(), this, preferLocal: false);
        }
    }

    public void Increment(string name, long by = 1)
    {
        lock (_lock)
        {
            _counters[name] = _counters.GetValueOrDefault(name) + by;
        }
    }

    /// <summary>A gauge's latest value; sent at the next flush.</summary>
    public void Gauge(string name, long value)
    {
        lock (_lock)
        {
            _gauges[name] = value;
        }
    }

    /// <summary>The lines waiting, and nothing waits any more. Counters are added up since the last flush.</summary>
    public List<string> TakeLines()
    {
        List<double> durations;
        long requests;
        Dictionary<int, long> statuses;
        Dictionary<string, long> counters;
        Dictionary<string, long> gauges;
        lock (_lock)
        {
            if (_requests == 0 && _counters.Count == 0 && _gauges.Count == 0)
            {
                return [];
            }
            (durations, _durations) = (_durations, new List<double>(Math.Min(_durations.Count, FlushAtDurations)));
            (requests, _requests) = (_requests, 0);
            (statuses, _statuses) = (_statuses, []);
            (counters, _counters) = (_counters, []);
            (gauges, _gauges) = (_gauges, []);
        }
        var lines = new List<string>(durations.Count + statuses.Count + counters.Count + gauges.Count + 1);
        foreach (var (name, value) in gauges)
        {
            lines.Add(StatsdFormat.Line(_prefix, name, value.ToString(CultureInfo.InvariantCulture), "g", _tags));
        }
        foreach (var (name, value) in counters)
        {
            lines.Add(StatsdFormat.Line(_prefix, name, value.ToString(CultureInfo.InvariantCulture), "c", _tags));
        }
        if (requests > 0)
        {
            lines.Add(StatsdFormat.Line(_prefix, StatsdMetrics.Requests, requests.ToString(CultureInfo.InvariantCulture), "c", _tags));
        }
        foreach (var (status, count) in statuses)
        {
            lines.Add(StatsdFormat.Line(_prefix, StatsdMetrics.RequestStatusPrefix + status.ToString(CultureInfo.InvariantCulture), count.ToString(CultureInfo.InvariantCulture), "c", _tags));
        }
        foreach (var ms in durations)
        {
            lines.Add(StatsdFormat.Line(_prefix, StatsdMetrics.RequestDuration, StatsdFormat.Milliseconds(ms), "ms", _tags));
        }
        return lines;
    }

    /// <summary>Sends what is waiting, now (also from the timer, and at exit).</summary>
    public void Flush()
    {
        Volatile.Write(ref _flushQueued, 0);
        lock (_sendLock)
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return;
            }
            var lines = TakeLines();
            if (lines.Count == 0)
            {
                return;
            }
            foreach (var datagram in StatsdFormat.Pack(lines, MaxDatagramBytes))
            {
                try
                {
                    _socket.SendTo(datagram, SocketFlags.None, _target);
                    Interlocked.Increment(ref _sent);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    Interlocked.Increment(ref _failed);
                    if (Interlocked.Exchange(ref _warned, 1) == 0)
                    {
                        _warn?.Invoke($"statsd: cannot send to {Target}: {e.Message} (metrics are dropped until it works; this is logged once)");
                    }
                }
            }
        }
    }

    /// <summary>From the timer and the thread pool: a failure is logged (rate-limited), never thrown.</summary>
    private void FlushGuarded() => Background.Run("statsd", Flush, _warn);

    /// <summary>Stops the timer and sends what is left.</summary>
    public void Dispose()
    {
        _timer.Dispose();
        Flush();
        lock (_sendLock)
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                _socket.Dispose();
            }
        }
    }
}
