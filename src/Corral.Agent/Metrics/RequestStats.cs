using System.Diagnostics;

namespace Corral.Agent.Metrics;

/// <summary>Requests served and in flight, and since when the worker has been busy (for the sync class's timeout).</summary>
public sealed class RequestStats
{
    private long _served;
    private int _inFlight;
    private long _busySince; // Stopwatch timestamp when in-flight went from 0 to 1; 0 when idle

    public void Begin()
    {
        if (Interlocked.Increment(ref _inFlight) == 1)
        {
            Volatile.Write(ref _busySince, Stopwatch.GetTimestamp());
        }
    }

    /// <summary>
    /// sync: the request that now runs, after waiting for the one before it, starts the busy clock
    /// again: --timeout limits each request, as with Gunicorn, not a queue of them.
    /// </summary>
    public void Running() => Volatile.Write(ref _busySince, Stopwatch.GetTimestamp());

    /// <returns>The number of requests served so far, this one included.</returns>
    public long End()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0)
        {
            Volatile.Write(ref _busySince, 0);
        }
        return Interlocked.Increment(ref _served);
    }

    public int InFlight => Volatile.Read(ref _inFlight);

    public (long Served, int InFlight, long BusyMs) Snapshot()
    {
        var since = Volatile.Read(ref _busySince);
        var busyMs = since == 0 ? 0 : (long)Stopwatch.GetElapsedTime(since).TotalMilliseconds;
        return (Volatile.Read(ref _served), Volatile.Read(ref _inFlight), busyMs);
    }
}
