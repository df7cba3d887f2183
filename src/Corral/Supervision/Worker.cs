namespace Corral.Supervision;

/// <summary>
/// What the master knows of one worker process. The arbiter decides; the worker's transitions are
/// methods here (Puma's WorkerHandle), so each change of state comes with what goes with it: when it
/// was signalled, and why it was stopped.
/// </summary>
public sealed class Worker(int pid, int generation, int age, DateTimeOffset spawnedAt)
{
    public int Pid { get; } = pid;
    public int Generation { get; } = generation;

    /// <summary>Order of spawning: a lower age is an older worker (Gunicorn's worker.age).</summary>
    public int Age { get; } = age;
    public DateTimeOffset SpawnedAt { get; } = spawnedAt;

    public WorkerState State { get; private set; } = WorkerState.Booting;
    /// <summary>When the worker last sent a message (a heartbeat: when it sent it, not when the master read it).</summary>
    public DateTimeOffset LastSeen { get; private set; } = spawnedAt;
    public DateTimeOffset? ReadyAt { get; private set; }
    public DateTimeOffset? SignalledAt { get; private set; }

    /// <summary>Why the arbiter stopped it (its latest decision: a master stop overrides an earlier one); null while it serves.</summary>
    public StopReason? StopReason { get; private set; }

    /// <summary>Why it is to be replaced (see <see cref="IsRetireReason"/>), if it is.</summary>
    public StopReason? RetireReason { get; private set; }

    /// <summary>Asked to be replaced (--max-requests): a successor boots first, then this one drains.</summary>
    public bool Retiring => RetireReason is not null;

    /// <summary>
    /// Its turn to be replaced came: its successor boots (or is ready), then it drains. A retiring worker
    /// that waits for its turn (one worker is recycled at a time) still serves and counts as one of the workers.
    /// </summary>
    public bool Replacing { get; private set; }

    /// <summary>How long it lives under --max-worker-lifetime (its jitter included); null: no age limit.</summary>
    public TimeSpan? Lifetime { get; init; }

    /// <summary>When it reaches --max-worker-lifetime (a promoted spare's lifetime runs from its promotion); null: no age limit.</summary>
    public DateTimeOffset? LifetimeDueAt => Lifetime is { } l ? (PromotedAt ?? SpawnedAt) + l : null;

    private bool _spare;

    /// <summary>
    /// A spare (--spare-workers): booted and warmed like the others, but it takes no connection and is
    /// not one of the serving workers until it is promoted (<see cref="Promote"/>).
    /// </summary>
    public bool Spare { get => _spare; init => _spare = value; }

    /// <summary>When it was promoted from spare to serving; null: it never was a spare, or still is one.</summary>
    public DateTimeOffset? PromotedAt { get; private set; }

    /// <summary>A ready spare becomes a serving worker at <paramref name="now"/>; false if it is not a ready spare.</summary>
    public bool Promote(DateTimeOffset now)
    {
        if (!_spare || State != WorkerState.Ready)
        {
            return false;
        }
        _spare = false;
        PromotedAt = now;
        return true;
    }
    public bool KillSent { get; private set; }

    /// <summary>Killed for not becoming ready within --timeout: its exit counts as a failed boot.</summary>
    public bool BootTimedOut { get; private set; }

    public long Served { get; private set; }
    public int InFlight { get; private set; }

    /// <summary>Milliseconds the worker had been busy when it last reported (0: idle).</summary>
    public long BusyMs { get; private set; }
    public string? LastError { get; private set; }

    /// <summary>Said anything on its control channel: corral's agent runs in it.</summary>
    public bool HeardFrom { get; private set; }

    public bool IsServing => State is WorkerState.Booting or WorkerState.Ready;

    /// <summary>It sent a message at <paramref name="sent"/>: alive then (a message read late does not move it back), and its agent runs.</summary>
    public void Heard(DateTimeOffset sent)
    {
        if (sent > LastSeen)
        {
            LastSeen = sent;
        }
        HeardFrom = true;
    }

    /// <summary>Its "ready": true if it was booting (a ready worker saying so again changes nothing).</summary>
    public bool MarkReady(DateTimeOffset now)
    {
        if (State != WorkerState.Booting)
        {
            return false;
        }
        State = WorkerState.Ready;
        ReadyAt = now;
        return true;
    }

    /// <summary>Its heartbeat's counts: requests served, in flight, and how long it has been busy.</summary>
    public void Report(long served, int inFlight, long busyMs)
    {
        Served = served;
        InFlight = inFlight;
        BusyMs = busyMs;
    }

    /// <summary>What it said went wrong (the reason given if it fails to boot).</summary>
    public void NoteError(string? text) => LastError = text;

    /// <summary>
    /// It is to be replaced, for <paramref name="reason"/> (see <see cref="IsRetireReason"/>): false if it
    /// no longer serves or already retires.
    /// </summary>
    public bool Retire(StopReason reason)
    {
        if (!IsRetireReason(reason))
        {
            throw new ArgumentOutOfRangeException(nameof(reason), reason, "a worker retires for --max-requests, memory, age or a hung request");
        }
        if (!IsServing || Retiring)
        {
            return false;
        }
        RetireReason = reason;
        return true;
    }

    /// <summary>Its turn to be replaced: its successor boots now. False if it does not retire, no longer serves, or already is.</summary>
    public bool StartReplacement()
    {
        if (!Retiring || !IsServing || Replacing)
        {
            return false;
        }
        Replacing = true;
        return true;
    }

    /// <summary>Whether a worker is replaced for <paramref name="reason"/> by retiring: successor first, then a drain.</summary>
    public static bool IsRetireReason(StopReason reason) => reason is Supervision.StopReason.MaxRequests or Supervision.StopReason.OutOfMemory
        or Supervision.StopReason.Memory or Supervision.StopReason.Lifetime or Supervision.StopReason.Deadline;

    /// <summary>Sent TERM or QUIT at <paramref name="now"/>, for <paramref name="reason"/>: it drains and exits.</summary>
    public void Stop(DateTimeOffset now, StopReason reason)
    {
        State = WorkerState.Stopping;
        SignalledAt = now;
        StopReason = reason;
    }

    /// <summary>
    /// Timed out at <paramref name="now"/>: sent SIGABRT, SIGKILL follows. One not ready within
    /// <paramref name="timeout"/> failed to boot, and says so if it said nothing else.
    /// </summary>
    public void TimeOut(DateTimeOffset now, TimeSpan timeout)
    {
        if (State == WorkerState.Booting)
        {
            // Not ready within --timeout: a boot failure (back-off, failed reload), not a hang.
            BootTimedOut = true;
            LastError ??= $"not ready within --timeout ({timeout.TotalSeconds:0.#} s)";
        }
        State = WorkerState.Killing;
        SignalledAt = now;
        StopReason = Supervision.StopReason.Timeout;
    }

    /// <summary>Sent SIGKILL at <paramref name="now"/>, for <paramref name="reason"/> (above the memory ceiling): no drain, no second signal.</summary>
    public void Kill(DateTimeOffset now, StopReason reason)
    {
        State = WorkerState.Killing;
        SignalledAt = now;
        StopReason = reason;
        KillSent = true;
    }

    /// <summary>Its PSS in bytes, as the master last read it (0: not read).</summary>
    public long Memory { get; private set; }

    /// <summary>The master read its PSS: <paramref name="bytes"/>.</summary>
    public void NoteMemory(long bytes) => Memory = bytes;

    /// <summary>Reported a hung request (--request-timeout): true the first time only, so the master says so once per worker.</summary>
    public bool NoteHung()
    {
        if (Hung)
        {
            return false;
        }
        Hung = true;
        return true;
    }

    /// <summary>Reported a request still running past --request-timeout and its grace.</summary>
    public bool Hung { get; private set; }

    /// <summary>Timed out, its stacks being captured: SIGABRT waits for the capture (or its bound), from <see cref="SignalledAt"/>.</summary>
    public bool AbortPending { get; private set; }

    /// <summary>Timed out at <paramref name="now"/>; SIGABRT is sent once its stacks are captured (<see cref="NoteAbortSent"/>).</summary>
    public void TimeOutAwaitingStacks(DateTimeOffset now, TimeSpan timeout)
    {
        TimeOut(now, timeout);
        AbortPending = true;
    }

    /// <summary>Sent SIGABRT at <paramref name="now"/>: SIGKILL follows after the abort grace.</summary>
    public void NoteAbortSent(DateTimeOffset now)
    {
        AbortPending = false;
        SignalledAt = now;
    }

    /// <summary>When the master last captured its stacks for a starved pool (at most one capture per worker per interval).</summary>
    public DateTimeOffset? StarvationStacksAt { get; private set; }

    public void NoteStarvationStacks(DateTimeOffset now) => StarvationStacksAt = now;

    /// <summary>Sent SIGKILL: it is not sent again.</summary>
    public void NoteKillSent() => KillSent = true;
}
