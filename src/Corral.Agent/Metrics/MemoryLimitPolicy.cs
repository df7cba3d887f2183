namespace Corral.Agent.Metrics;

/// <summary>What the worker does after one look at its memory against --max-worker-memory.</summary>
public enum MemoryVerdict
{
    /// <summary>Under the limit (or already recycling, or waiting before it may collect again): nothing.</summary>
    Nothing,
    /// <summary>Over the limit: run one full, compacting collection and look again (<see cref="MemoryLimitPolicy.AfterCollection"/>).</summary>
    Collect,
    /// <summary>Still over after a collection: stop accepting and ask to be recycled. Said once.</summary>
    Recycle,
}

/// <summary>
/// --max-worker-memory, judged in the worker from its PSS (about once a second), GC-aware: a worker
/// over the limit only because the GC has not run yet is not recycled. Over the limit, it first runs one
/// full compacting collection, then reads again; only if it is still over does it recycle. Collections
/// are at most one every <see cref="CollectionSpacing"/> (a worker that sits near its limit does not
/// collect every second); meanwhile, a worker over the limit by more than the last collection freed is
/// recycled without another: even if all of that was garbage again, the rest is not (a leak growing
/// past the limit right after a collection that brought it just under).
/// Pure: the readings and the time are given.
/// </summary>
public sealed class MemoryLimitPolicy(long limit, TimeSpan collectionSpacing)
{
    /// <summary>The least time between two collections the policy asks for.</summary>
    public static readonly TimeSpan DefaultCollectionSpacing = TimeSpan.FromSeconds(5);

    private TimeSpan? _lastCollection;
    private long _beforeCollection;
    private long _lastFreed;

    public MemoryLimitPolicy(long limit)
        : this(limit, DefaultCollectionSpacing)
    {
    }

    public long Limit { get; } = limit;
    public TimeSpan CollectionSpacing { get; } = collectionSpacing;

    /// <summary>Set once the policy has said <see cref="MemoryVerdict.Recycle"/>.</summary>
    public bool Recycling { get; private set; }

    /// <summary>
    /// One reading: <paramref name="pss"/> bytes at <paramref name="now"/> (any monotonic clock).
    /// 0 (PSS unreadable) is never over.
    /// </summary>
    public MemoryVerdict Judge(long pss, TimeSpan now)
    {
        if (Recycling || Limit <= 0 || pss <= Limit)
        {
            return MemoryVerdict.Nothing;
        }
        if (_lastCollection is { } last && now - last < CollectionSpacing)
        {
            if (pss > Limit + _lastFreed)
            {
                Recycling = true;
                return MemoryVerdict.Recycle;
            }
            return MemoryVerdict.Nothing; // it was under after a recent collection: look again later
        }
        _lastCollection = now;
        _beforeCollection = pss;
        return MemoryVerdict.Collect;
    }

    /// <summary>The reading right after the collection <see cref="Judge"/> asked for.</summary>
    public MemoryVerdict AfterCollection(long pss)
    {
        _lastFreed = Math.Max(0, _beforeCollection - pss);
        if (Recycling || Limit <= 0 || pss <= Limit)
        {
            return MemoryVerdict.Nothing;
        }
        Recycling = true;
        return MemoryVerdict.Recycle;
    }
}
