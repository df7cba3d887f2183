namespace Corral.Supervision;

/// <summary>
/// Why the arbiter stopped a worker, recorded when it decides (a worker that exits unasked has none).
/// <see cref="MaxRequests"/>, <see cref="OutOfMemory"/>, <see cref="Memory"/>, <see cref="Lifetime"/> and
/// <see cref="Deadline"/> are also why a worker retires: it is to be replaced, and is stopped once its
/// successor is ready.
/// </summary>
public enum StopReason
{
    /// <summary>A reload (HUP, a new build under --reload): the new generation is ready, this older one drains.</summary>
    Reload,
    /// <summary>Still booting when a newer reload began: it would never serve.</summary>
    SupersededBoot,
    /// <summary>Of a reload whose workers could not boot: the old workers stay, the new ones go.</summary>
    FailedReload,
    /// <summary>Reached --max-requests.</summary>
    MaxRequests,
    /// <summary>Ran out of memory (an OutOfMemoryException in the app): recycled like --max-requests.</summary>
    OutOfMemory,
    /// <summary>Above --max-worker-memory: recycled like --max-requests, but it stops accepting at once.</summary>
    Memory,
    /// <summary>Older than --max-worker-lifetime (plus its jitter): recycled like --max-requests.</summary>
    Lifetime,
    /// <summary>A request ran past --request-timeout and its grace: the worker is hung for it, recycled, then killed.</summary>
    Deadline,
    /// <summary>Above the hard memory ceiling: killed at once (SIGKILL), without a drain.</summary>
    MemoryCeiling,
    /// <summary>Not ready, or silent, within --timeout (or a sync worker's request ran past it): SIGABRT, then SIGKILL.</summary>
    Timeout,
    /// <summary>`corral ctl kill PID`.</summary>
    CtlKill,
    /// <summary>Above the wanted number of workers: TTOU, `corral ctl remove N`, or a reload to fewer workers.</summary>
    ScaledDown,
    /// <summary>WINCH: this master's workers stop, the master stays (HUP starts them again).</summary>
    Parked,
    /// <summary>The master stops (TERM, INT, QUIT, or a halt): nobody is replaced.</summary>
    MasterStopping,
}
