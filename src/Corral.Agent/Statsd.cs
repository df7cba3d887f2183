using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Corral.Agent;

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

/// <summary>
/// Where --statsd-host points: HOST[:PORT] (port 8125 when left out, as Gunicorn), [IPv6]:PORT, or
/// unix:PATH (also unix://PATH) for a unix datagram socket.
/// </summary>
public sealed record StatsdAddress(string? Host, int Port, string? UnixPath)
{
    public const int DefaultPort = 8125;

    public static bool TryParse(string text, out StatsdAddress? address, out string? error)
    {
        address = null;
        error = null;
        text = text.Trim();
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            var rest = text["unix:".Length..];
            // Gunicorn reads unix:DIGITS as the host "unix" and that port (its own compatibility rule).
            if (rest.Length > 0 && rest.All(char.IsAsciiDigit))
            {
                return TryPort(rest, text, "unix", out address, out error);
            }
            var path = rest.StartsWith("//", StringComparison.Ordinal) ? rest[2..] : rest;
            if (path.Length == 0)
            {
                error = "unix: needs a socket path";
                return false;
            }
            address = new StatsdAddress(null, 0, path);
            return true;
        }
        string host;
        string? port = null;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']');
            if (close < 0 || !IPAddress.TryParse(text[1..close], out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = "an IPv6 address goes in brackets: [::1]:8125";
                return false;
            }
            host = text[1..close];
            if (close + 1 < text.Length)
            {
                if (text[close + 1] != ':')
                {
                    error = "expected [IPv6]:PORT";
                    return false;
                }
                port = text[(close + 2)..];
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon >= 0 && text.IndexOf(':') != colon)
            {
                error = "an IPv6 address goes in brackets: [::1]:8125";
                return false;
            }
            host = colon < 0 ? text : text[..colon];
            port = colon < 0 ? null : text[(colon + 1)..];
        }
        if (host.Length == 0 || host.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '/' or '[' or ']'))
        {
            error = "no host";
            return false;
        }
        return port is null
            ? Ok(new StatsdAddress(host, DefaultPort, null), out address)
            : TryPort(port, text, host, out address, out error);
    }

    private static bool Ok(StatsdAddress value, out StatsdAddress? address)
    {
        address = value;
        return true;
    }

    private static bool TryPort(string port, string text, string host, out StatsdAddress? address, out string? error)
    {
        address = null;
        error = null;
        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) || p is < 1 or > 65535)
        {
            error = $"'{text}' has no port from 1 to 65535";
            return false;
        }
        address = new StatsdAddress(host, p, null);
        return true;
    }

    /// <summary>
    /// Resolves the host once (an IPv4 address first, as Gunicorn sends over IPv4): the text a worker
    /// gets (IP:PORT, [IPv6]:PORT or unix:FULLPATH), so that no worker looks the name up again. The
    /// master does this on its loop (at start and at HUP), so a resolver that does not answer is given
    /// up on after <paramref name="timeout"/> (5 s if not given).
    /// </summary>
    public string Resolve(TimeSpan? timeout = null)
    {
        if (UnixPath is not null)
        {
            return "unix:" + Path.GetFullPath(UnixPath); // workers run in the app's folder
        }
        if (!IPAddress.TryParse(Host, out var ip))
        {
            IPAddress[] all;
            var limit = timeout ?? TimeSpan.FromSeconds(5);
            using var cts = new CancellationTokenSource(limit);
            try
            {
                all = Dns.GetHostAddressesAsync(Host!, cts.Token).WaitAsync(limit).GetAwaiter().GetResult();
            }
            catch (SocketException e)
            {
                throw new StatsdException($"cannot resolve {Host}: {e.Message}");
            }
            catch (Exception e) when (e is OperationCanceledException or TimeoutException)
            {
                throw new StatsdException($"cannot resolve {Host}: no answer within {limit.TotalSeconds:0.#} s");
            }
            ip = all.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                ?? all.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetworkV6)
                ?? throw new StatsdException($"cannot resolve {Host}: no address");
        }
        return new IPEndPoint(ip, Port).ToString();
    }

    /// <summary>The endpoint of a <see cref="Resolve"/>d address.</summary>
    public static EndPoint EndPointOf(string resolved) =>
        resolved.StartsWith("unix:", StringComparison.Ordinal)
            ? new UnixDomainSocketEndPoint(resolved["unix:".Length..])
            : IPEndPoint.Parse(resolved);
}

public sealed class StatsdException(string message) : Exception(message);

/// <summary>The statsd line protocol, as Gunicorn writes it.</summary>
public static class StatsdFormat
{
    /// <summary>
    /// --statsd-prefix with exactly one '.' at its end ("app", "app." and "app.." all give "app."), as
    /// Gunicorn normalises it; an empty prefix stays empty.
    /// </summary>
    public static string NormalizePrefix(string? prefix)
    {
        var trimmed = (prefix ?? "").Trim().TrimEnd('.');
        return trimmed.Length == 0 ? "" : trimmed + ".";
    }

    /// <summary>Why a prefix would break the line protocol; null if it is fine.</summary>
    public static string? CheckPrefix(string prefix) =>
        prefix.Any(c => c is ':' or '|' or '@' or '#' || char.IsWhiteSpace(c) || char.IsControl(c) || c > '~')
            ? "a prefix may not hold ':', '|', '@', '#', spaces or non-ASCII characters"
            : null;

    /// <summary>Why --dogstatsd-tags would break the line protocol; null if it is fine.</summary>
    public static string? CheckTags(string tags) =>
        tags.Any(c => c is '|' || char.IsWhiteSpace(c) || char.IsControl(c) || c > '~')
            ? "tags may not hold '|', spaces or non-ASCII characters"
            : null;

    /// <summary>
    /// One metric: PREFIXNAME:VALUE|TYPE, and |#TAGS (DogStatsD) when there are tags. TYPE: c, g or ms.
    /// </summary>
    public static string Line(string prefix, string name, string value, string type, string? tags) =>
        string.IsNullOrEmpty(tags) ? $"{prefix}{name}:{value}|{type}" : $"{prefix}{name}:{value}|{type}|#{tags}";

    /// <summary>Milliseconds as Gunicorn sends a duration: a decimal number, to the microsecond.</summary>
    public static string Milliseconds(double ms) => ms.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>
    /// Packs lines into datagrams of at most <paramref name="maxBytes"/> bytes, lines separated by '\n'
    /// (the multi-metric packet statsd, Telegraf, the Datadog agent and statsd_exporter read). A line
    /// longer than the limit on its own goes alone.
    /// </summary>
    public static List<byte[]> Pack(IEnumerable<string> lines, int maxBytes)
    {
        var datagrams = new List<byte[]>();
        var current = new MemoryStream();
        foreach (var line in lines)
        {
            var bytes = Encoding.UTF8.GetBytes(line);
            if (current.Length > 0 && current.Length + 1 + bytes.Length > maxBytes)
            {
                datagrams.Add(current.ToArray());
                current.SetLength(0);
            }
            if (current.Length > 0)
            {
                current.WriteByte((byte)'\n');
            }
            current.Write(bytes);
        }
        if (current.Length > 0)
        {
            datagrams.Add(current.ToArray());
        }
        return datagrams;
    }
}

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

    /// <param name="target">A <see cref="StatsdAddress.Resolve"/>d address: IP:PORT, [IPv6]:PORT or unix:PATH.</param>
    /// <param name="prefix">Already normalised (<see cref="StatsdFormat.NormalizePrefix"/>).</param>
    /// <param name="warn">Told, once, that sending failed.</param>
    /// <param name="flushInterval">How often the timer sends (default <see cref="FlushInterval"/>; infinite: only <see cref="Flush"/>).</param>
    public StatsdClient(string target, string prefix, string? tags, Action<string>? warn, TimeSpan? flushInterval = null)
    {
        _target = StatsdAddress.EndPointOf(target);
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
