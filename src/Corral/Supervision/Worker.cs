namespace Corral.Supervision;

/// <summary>What the master knows of one worker process.</summary>
public sealed class Worker
{
    public required int Pid { get; init; }
    public required int Generation { get; init; }

    /// <summary>Order of spawning: a lower age is an older worker (Gunicorn's worker.age).</summary>
    public required int Age { get; init; }
    public required DateTimeOffset SpawnedAt { get; init; }

    public WorkerState State { get; set; } = WorkerState.Booting;
    /// <summary>When the worker last sent a message (a heartbeat: when it sent it, not when the master read it).</summary>
    public DateTimeOffset LastSeen { get; set; }
    public DateTimeOffset? ReadyAt { get; set; }
    public DateTimeOffset? SignalledAt { get; set; }

    /// <summary>Asked to be replaced (--max-requests): a successor boots first, then this one drains.</summary>
    public bool Retiring { get; set; }
    public bool KillSent { get; set; }

    /// <summary>Killed for not becoming ready within --timeout: its exit counts as a failed boot.</summary>
    public bool BootTimedOut { get; set; }

    public long Served { get; set; }
    public int InFlight { get; set; }

    /// <summary>Milliseconds the worker had been busy when it last reported (0: idle).</summary>
    public long BusyMs { get; set; }
    public string? LastError { get; set; }

    /// <summary>Said anything on its control channel: corral's agent runs in it.</summary>
    public bool HeardFrom { get; set; }

    public bool IsServing => State is WorkerState.Booting or WorkerState.Ready;
}
