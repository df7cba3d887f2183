using Corral.Agent.Contract;
using Corral.Agent.Metrics;
using Corral.Supervision;

namespace Corral.Metrics;

/// <summary>
/// The master's view for observers, kept on the master's loop (never on another thread): folds each
/// worker's stats lines into totals, sees workers come and go (boot time, restarts by the reason the
/// arbiter recorded), and makes snapshots (for `corral ctl status`, the status page and the gauges).
/// </summary>
public sealed class Observatory
{
    private readonly Dictionary<int, LastStats> _last = [];
    private readonly Dictionary<string, long> _requests = [];
    private readonly Dictionary<string, long> _restarts = MasterMetrics.RestartReasons.ToDictionary(r => r, _ => 0L);
    private readonly HashSet<int> _bootObserved = [];
    private readonly Dictionary<int, double> _bootCpu = [];
    private readonly ListenQueue _queue;
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private long _exitsSeen;
    private readonly Dictionary<int, DateTimeOffset> _spawnedAt = [];
    private readonly Queue<(WorkerExit Exit, DateTimeOffset At, TimeSpan? Lived)> _recentExits = [];
    private long _starvationSeen;
    private long _scaleUpsSeen;
    private long _scaleDownsSeen;

    public Observatory(ListenQueue queue, MasterMetrics metrics)
    {
        _queue = queue;
        Metrics = metrics;
    }

    public MasterMetrics Metrics { get; }

    private sealed class LastStats
    {
        public Dictionary<string, long> Requests { get; } = [];
        public long[] Counts { get; } = new long[WorkerStats.Buckets.Length + 1];
        public double[] Sums { get; } = new double[WorkerStats.Buckets.Length + 1];
        public long Rss { get; set; }
        public long Pss { get; set; }
        public long GcHeap { get; set; }
    }

    /// <summary>
    /// A worker's "stats" line: its counts since it started. What grew since its previous line is
    /// added to the master's totals, so a worker's last line (sent at exit, before its channel closes)
    /// is counted like any other, and nothing a worker reported is lost when it goes.
    /// </summary>
    public void OnStats(int pid, string json)
    {
        if (WorkerStatsReport.TryParse(json) is not { } report)
        {
            return; // not a report: a worker's garbage is dropped, never thrown on the master's loop
        }
        if (!_last.TryGetValue(pid, out var last))
        {
            _last[pid] = last = new LastStats();
        }
        foreach (var (name, n) in report.Requests)
        {
            var parts = name.Split(' ');
            var delta = n - last.Requests.GetValueOrDefault(name);
            if (parts.Length != 2 || delta <= 0)
            {
                continue;
            }
            last.Requests[name] = n;
            _requests[name] = _requests.GetValueOrDefault(name) + delta;
            Metrics.AddRequests(parts[0], parts[1], delta);
        }
        var buckets = Math.Min(last.Counts.Length, Math.Min(report.BucketCounts.Length, report.BucketSums.Length));
        for (var i = 0; i < buckets; i++)
        {
            var dc = report.BucketCounts[i] - last.Counts[i];
            if (dc > 0)
            {
                Metrics.AddDurations(i, dc, Math.Max(0, report.BucketSums[i] - last.Sums[i]));
                last.Counts[i] = report.BucketCounts[i];
                last.Sums[i] = report.BucketSums[i];
            }
        }
        last.Rss = report.Rss;
        last.Pss = report.Pss;
        last.GcHeap = report.GcHeap;
    }

    /// <summary>The worker's control channel closed: it sends nothing more; its counts stay in the totals.</summary>
    public void OnControlClosed(int pid) => _last.Remove(pid);

    /// <summary>After every event of the loop: boot times of workers that became ready, and why workers that are gone went.</summary>
    public void AfterEvent(Arbiter arbiter)
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var w in arbiter.Workers)
        {
            _spawnedAt.TryAdd(w.Pid, w.SpawnedAt);
            if (w.ReadyAt is { } ready && _bootObserved.Add(w.Pid))
            {
                Metrics.ObserveBoot((ready - w.SpawnedAt).TotalSeconds);
                // Read as the ready message is handled (the loop runs this right after it): what the
                // worker's boot cost, its warm-up included. Null if it is already gone.
                if (Os.ProcStat.CpuSeconds(w.Pid) is { } cpu)
                {
                    _bootCpu[w.Pid] = cpu;
                    Metrics.ObserveBootCpu(cpu);
                    arbiter.OnBootCost(w.Pid, cpu);
                }
            }
        }
        foreach (var exit in arbiter.ExitsSince(_exitsSeen))
        {
            _bootObserved.Remove(exit.Pid);
            _bootCpu.Remove(exit.Pid);
            // Seen right after the event that ended it: now is when it exited, to within one event.
            _recentExits.Enqueue((exit, now, _spawnedAt.Remove(exit.Pid, out var spawned) ? now - spawned : null));
            if (_recentExits.Count > RecentExitsShown)
            {
                _recentExits.Dequeue();
            }
            if (arbiter.Stopping)
            {
                continue; // the master stops: nobody is replaced
            }
            if (RestartReason(exit) is { } reason)
            {
                _restarts[reason]++;
                Metrics.AddRestart(reason);
            }
        }
        _exitsSeen = arbiter.ExitCount;
        if (arbiter.ScaleUps > _scaleUpsSeen || arbiter.ScaleDowns > _scaleDownsSeen)
        {
            Metrics.AddScaleEvents(arbiter.ScaleUps - _scaleUpsSeen, arbiter.ScaleDowns - _scaleDownsSeen);
            _scaleUpsSeen = arbiter.ScaleUps;
            _scaleDownsSeen = arbiter.ScaleDowns;
        }
        if (arbiter.StarvationEpisodes > _starvationSeen)
        {
            Metrics.AddStarvationEpisodes(arbiter.StarvationEpisodes - _starvationSeen);
            _starvationSeen = arbiter.StarvationEpisodes;
        }
    }

    /// <summary>
    /// The corral_worker_restarts_total label for a worker that is gone, from why the arbiter stopped it;
    /// null when it is not replaced (scaled down, parked by WINCH, of a failed reload, the master stops).
    /// One that retired counts by why it retired (an out-of-memory recycle as "memory") whatever
    /// stopped it, unless it timed out, was killed with `corral ctl kill`, or exited unasked.
    /// </summary>
    private static string? RestartReason(WorkerExit exit) => exit.Reason switch
    {
        null => "crash",
        StopReason.Timeout => "timeout",
        StopReason.CtlKill => "kill",
        StopReason.MemoryCeiling => "memory",
        // Scaled down while it waited for its turn to be recycled: it went, nobody replaced it.
        StopReason.ScaledDown => null,
        _ when exit.RetireReason is { } retired => RetireLabel(retired),
        StopReason.Reload or StopReason.SupersededBoot => "reload",
        _ => null, // scaled down, parked, of a failed reload, the master stops: not replaced
    };

    /// <summary>How many of the latest exits a snapshot shows.</summary>
    public const int RecentExitsShown = 10;

    /// <summary>
    /// Why a worker that is gone went, one word for `ctl status`: why it retired (memory, lifetime,
    /// max-requests, deadline) when it did and was stopped for that, else why the arbiter stopped it
    /// (timeout, kill, memory-ceiling, reload, scaled-down, ...), crash if it exited unasked, or
    /// boot-failed if it did so before it was ready.
    /// </summary>
    public static string WhyGone(WorkerExit exit) => exit.Reason switch
    {
        null => exit.LastState == WorkerState.Booting ? "boot-failed" : "crash",
        StopReason.Timeout => "timeout",
        StopReason.CtlKill => "kill",
        StopReason.MemoryCeiling => "memory-ceiling",
        StopReason.MasterStopping => "stopping",
        StopReason.ScaledDown => "scaled-down",
        _ when exit.RetireReason is { } retired => RetireLabel(retired),
        StopReason.Reload => "reload",
        StopReason.SupersededBoot => "superseded-boot",
        StopReason.FailedReload => "failed-reload",
        StopReason.Parked => "parked",
        { } other => other.ToString().ToLowerInvariant(),
    };

    private static string RetireLabel(StopReason reason) => reason switch
    {
        StopReason.Memory or StopReason.OutOfMemory => "memory",
        StopReason.Lifetime => "lifetime",
        StopReason.Deadline => "deadline",
        _ => "max-requests",
    };

    public MasterSnapshot Snapshot(Arbiter arbiter)
    {
        var now = DateTimeOffset.UtcNow;
        var byClass = WorkerStats.StatusClasses.ToDictionary(c => c, c => _requests.Where(kv => kv.Key.EndsWith(c, StringComparison.Ordinal)).Sum(kv => kv.Value));
        return new MasterSnapshot
        {
            Pid = Environment.ProcessId,
            Version = Master.Version,
            UptimeSeconds = Math.Round((now - _started).TotalSeconds, 3),
            DesiredWorkers = arbiter.DesiredWorkers,
            WorkersMin = arbiter.WorkersMin,
            WorkersMax = arbiter.WorkersMax,
            ScaleUps = arbiter.ScaleUps,
            ScaleDowns = arbiter.ScaleDowns,
            LastScaleEvent = arbiter.LastScaleEvent,
            Stopping = arbiter.Stopping,
            Listeners = [.. _queue.Read().Select(d => new ListenerView(d.Listener, d.Queued))],
            Workers = [.. arbiter.Workers.OrderBy(w => w.Age).Select(w =>
            {
                var last = _last.GetValueOrDefault(w.Pid);
                // A ready spare is not a serving worker: its state says so (booting, stopping: as any worker).
                return new WorkerView(w.Pid, w.Spare && w.State == WorkerState.Ready ? "spare" : w.State.ToString().ToLowerInvariant(), w.Retiring, w.Generation,
                    Math.Round((now - w.SpawnedAt).TotalSeconds, 3),
                    w.ReadyAt is { } r ? Math.Round((r - w.SpawnedAt).TotalSeconds, 3) : null,
                    _bootCpu.TryGetValue(w.Pid, out var cpu) ? Math.Round(cpu, 3) : null,
                    // PSS: the master's own reading (every second under --max-worker-memory) when it has one, fresher than the worker's (every 5 s).
                    w.Served, w.InFlight, last?.Rss ?? 0, w.Memory > 0 ? w.Memory : last?.Pss ?? 0, last?.GcHeap ?? 0,
                    w.RetireReason is { } rr ? RetireLabel(rr) : null,
                    w.Lifetime is { } l ? Math.Round(l.TotalSeconds, 3) : null,
                    w.LifetimeDueAt is { } due && !w.Spare ? Math.Round((due - now).TotalSeconds, 3) : null,
                    w.Spare);
            })],
            RecentExits = [.. _recentExits.Reverse().Select(e => new ExitView(e.Exit.Pid, e.Exit.Generation, WhyGone(e.Exit), e.Exit.ExitCode,
                e.Lived is { } lived ? Math.Round(lived.TotalSeconds, 3) : null, Math.Round((now - e.At).TotalSeconds, 3)))],
            RequestsTotal = _requests.Values.Sum(),
            RequestsByClass = byClass,
            Restarts = new Dictionary<string, long>(_restarts),
            WorkerMemoryLimit = arbiter.Config.MaxWorkerMemory,
            WorkerMemoryCeiling = arbiter.Config.MaxWorkerMemoryCeiling,
        };
    }
}
