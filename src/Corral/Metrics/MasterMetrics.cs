using System.Text;
using Corral.Agent.Metrics;
using Prometheus;

namespace Corral.Metrics;

/// <summary>
/// The master's Prometheus metrics, in a registry of their own (prometheus-net: the exposition format
/// is the library's, not ours). Counters only ever grow by the deltas between a worker's successive
/// stats lines, so they stay monotonic when workers are recycled: a worker's requests are counted once,
/// whichever worker served them. Gauges are set from a snapshot of the master's state at each scrape.
/// </summary>
public sealed class MasterMetrics
{
    public static readonly double[] BootBuckets = [0.25, 0.5, 1, 2, 5, 10, 30, 60];

    /// <summary>Native AOT workers boot in tens of milliseconds of CPU, JIT ones in hundreds (bench/results/boot-cost.md).</summary>
    public static readonly double[] BootCpuBuckets = [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5];

    private readonly CollectorRegistry _registry = Prometheus.Metrics.NewCustomRegistry();
    private readonly Counter _requests;
    private readonly Histogram _duration;
    private readonly Gauge _inFlight;
    private readonly Gauge _workers;
    private readonly Counter _restarts;
    private readonly Counter _starvation;
    private readonly Histogram _boot;
    private readonly Histogram _bootCpu;
    private readonly Gauge _rss;
    private readonly Gauge _pss;
    private readonly Gauge _gcHeap;
    private readonly Gauge _listenQueue;
    private readonly Gauge _age;
    private readonly Gauge _lifetimeDue;
    private readonly Gauge _memoryLimit;
    private readonly Gauge _memoryCeiling;
    private readonly Gauge _workersDesired;
    private readonly Gauge _workersMin;
    private readonly Gauge _workersMax;
    private readonly Counter _scaleEvents;
    private readonly HashSet<string> _workerPids = [];

    public MasterMetrics()
    {
        var f = Prometheus.Metrics.WithCustomRegistry(_registry);
        _requests = f.CreateCounter("corral_requests_total", "HTTP requests served by the workers, by method and status class.",
            new CounterConfiguration { LabelNames = ["method", "status_class"] });
        _duration = f.CreateHistogram("corral_request_duration_seconds", "Time from the request reaching corral's middleware to its end, in seconds.",
            new HistogramConfiguration { Buckets = WorkerStats.Buckets });
        _inFlight = f.CreateGauge("corral_requests_in_flight", "Requests being served now, all workers.");
        _workers = f.CreateGauge("corral_workers", "Worker processes by state.", new GaugeConfiguration { LabelNames = ["state"] });
        _restarts = f.CreateCounter("corral_worker_restarts_total", "Workers replaced, by reason: max-requests, memory (--max-worker-memory, its hard ceiling, or OutOfMemoryException), lifetime (--max-worker-lifetime), deadline (a request hung past --request-timeout), timeout, crash, reload, kill (corral ctl kill).",
            new CounterConfiguration { LabelNames = ["reason"] });
        _starvation = f.CreateCounter("corral_worker_starvation_episodes_total", "Episodes of thread-pool starvation the workers reported (queued work waited longer than 1 s); each is logged once, with the stacks of the worker's threads.");
        _boot = f.CreateHistogram("corral_worker_boot_seconds", "Time from a worker's spawn to its ready message, in seconds.",
            new HistogramConfiguration { Buckets = BootBuckets });
        _bootCpu = f.CreateHistogram("corral_worker_boot_cpu_seconds", "CPU time (user + system) a worker had used when it reported ready, in seconds: what each reload, recycle or respawn costs before the worker serves.",
            new HistogramConfiguration { Buckets = BootCpuBuckets });
        _rss = f.CreateGauge("corral_worker_rss_bytes", "Resident memory of each worker, as it last reported it.", new GaugeConfiguration { LabelNames = ["pid"] });
        _pss = f.CreateGauge("corral_worker_pss_bytes", "Proportional set size of each worker (shared pages divided among the processes that map them), as it last reported it; read every 5 s.",
            new GaugeConfiguration { LabelNames = ["pid"] });
        _gcHeap = f.CreateGauge("corral_worker_gc_heap_bytes", "Managed (GC) heap of each worker, as it last reported it.", new GaugeConfiguration { LabelNames = ["pid"] });
        _listenQueue = f.CreateGauge("corral_listen_queue", "Connections waiting in the kernel's accept queue of each TCP listener (/proc/net/tcp rx_queue).",
            new GaugeConfiguration { LabelNames = ["listener"] });
        _age = f.CreateGauge("corral_worker_age_seconds", "Seconds since each worker was started.", new GaugeConfiguration { LabelNames = ["pid"] });
        _lifetimeDue = f.CreateGauge("corral_worker_lifetime_due_seconds", "Seconds until each worker reaches --max-worker-lifetime (its jitter included; 0 or below: due, waiting for its turn); no series without --max-worker-lifetime.",
            new GaugeConfiguration { LabelNames = ["pid"] });
        _memoryLimit = f.CreateGauge("corral_worker_memory_limit_bytes", "--max-worker-memory: the PSS above which a worker (after a full GC) is recycled; absent without a limit.");
        _memoryCeiling = f.CreateGauge("corral_worker_memory_ceiling_bytes", "--max-worker-memory-ceiling: the PSS above which the master kills a worker at once; absent without a limit.");
        _workersDesired = f.CreateGauge("corral_workers_desired", "Workers the master wants now: -w, moved by TTIN/TTOU and corral ctl add/remove, and by the load with -w MIN:MAX.");
        _workersMin = f.CreateGauge("corral_workers_min", "The least workers wanted: MIN of -w MIN:MAX (TTIN/TTOU move it); the wanted count for a fixed -w.");
        _workersMax = f.CreateGauge("corral_workers_max", "The most workers wanted: MAX of -w MIN:MAX (TTIN/TTOU move it); the wanted count for a fixed -w.");
        _scaleEvents = f.CreateCounter("corral_scale_events_total", "Changes of the wanted worker count made by the load (-w MIN:MAX), by direction: up, down. Each is logged once with its reason.",
            new CounterConfiguration { LabelNames = ["direction"] });
        _scaleEvents.WithLabels("up").IncTo(0);
        _scaleEvents.WithLabels("down").IncTo(0);
        foreach (var reason in RestartReasons)
        {
            _restarts.WithLabels(reason).IncTo(0); // every reason shows from the start, at 0
        }
    }

    public static readonly string[] RestartReasons = ["max-requests", "memory", "lifetime", "deadline", "timeout", "crash", "reload", "kill"];

    public void AddRequests(string method, string statusClass, long delta) => _requests.WithLabels(method, statusClass).Inc(delta);

    /// <summary>
    /// Adds a bucket's new observations: <paramref name="count"/> requests whose durations sum to
    /// <paramref name="sum"/>. Their mean lies within the bucket, so observing it <paramref name="count"/>
    /// times puts them in the right bucket and keeps the histogram's sum exact.
    /// </summary>
    public void AddDurations(int bucket, long count, double sum)
    {
        if (count <= 0 || count > MaxDurationCount - _durationCount)
        {
            return; // a worker writing nonsense: prometheus-net's count would overflow and fail every scrape
        }
        _durationCount += count;
        var b = WorkerStats.Buckets;
        var upper = bucket < b.Length ? b[bucket] : double.PositiveInfinity;
        var lower = bucket == 0 ? double.NegativeInfinity : Math.BitIncrement(b[bucket - 1]);
        _duration.Observe(Math.Clamp(sum / count, lower, upper), count);
    }

    /// <summary>
    /// The most requests the duration histogram counts in all, 2^53 (a million a second for 285 years;
    /// doubles count exactly up to it). A stats line that would go past it is not counted.
    /// </summary>
    public const long MaxDurationCount = 1L << 53;

    private long _durationCount;

    public void AddRestart(string reason) => _restarts.WithLabels(reason).Inc();

    public void AddStarvationEpisodes(long delta) => _starvation.Inc(delta);

    /// <summary>The load changed the wanted count <paramref name="ups"/> times up and <paramref name="downs"/> times down.</summary>
    public void AddScaleEvents(long ups, long downs)
    {
        if (ups > 0)
        {
            _scaleEvents.WithLabels("up").Inc(ups);
        }
        if (downs > 0)
        {
            _scaleEvents.WithLabels("down").Inc(downs);
        }
    }

    public void ObserveBoot(double seconds) => _boot.Observe(seconds);

    public void ObserveBootCpu(double seconds) => _bootCpu.Observe(seconds);

    /// <summary>Sets every gauge from the master's state at this scrape; series of workers that are gone are removed.</summary>
    public void SetGauges(MasterSnapshot s)
    {
        _inFlight.Set(s.Workers.Sum(w => w.InFlight));
        _workersDesired.Set(s.DesiredWorkers);
        _workersMin.Set(s.WorkersMin);
        _workersMax.Set(s.WorkersMax);
        // "spare": ready spares (--spare-workers), not counted as "ready"; a booting spare counts as "booting".
        foreach (var state in new[] { "booting", "ready", "spare", "stopping", "killing" })
        {
            _workers.WithLabels(state).Set(s.Workers.Count(w => w.State == state));
        }
        var live = s.Workers.Select(w => w.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        foreach (var gone in _workerPids.Where(p => !live.Contains(p)).ToList())
        {
            _rss.RemoveLabelled(gone);
            _pss.RemoveLabelled(gone);
            _gcHeap.RemoveLabelled(gone);
            _age.RemoveLabelled(gone);
            _lifetimeDue.RemoveLabelled(gone);
            _workerPids.Remove(gone);
        }
        foreach (var w in s.Workers)
        {
            var pid = w.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _age.WithLabels(pid).Set(w.AgeSeconds);
            _workerPids.Add(pid);
            if (w.LifetimeDueInSeconds is { } due)
            {
                _lifetimeDue.WithLabels(pid).Set(due);
            }
            if (w.Rss > 0)
            {
                _rss.WithLabels(pid).Set(w.Rss);
                _gcHeap.WithLabels(pid).Set(w.GcHeap);
                _workerPids.Add(pid);
            }
            if (w.Pss > 0)
            {
                // No series while it is unknown (smaps_rollup unreadable, or not read yet): 0 would be a false value.
                _pss.WithLabels(pid).Set(w.Pss);
                _workerPids.Add(pid);
            }
        }
        if (s.WorkerMemoryLimit > 0)
        {
            _memoryLimit.Set(s.WorkerMemoryLimit);
            _memoryCeiling.Set(s.WorkerMemoryCeiling);
        }
        else
        {
            _memoryLimit.Unpublish();
            _memoryCeiling.Unpublish();
        }
        foreach (var l in s.Listeners.Where(l => l.Queued >= 0))
        {
            _listenQueue.WithLabels(l.Name).Set(l.Queued);
        }
    }

    public async Task<string> ExportAsync(CancellationToken ct)
    {
        using var stream = new MemoryStream();
        await _registry.CollectAndExportAsTextAsync(stream, ct).ConfigureAwait(false);
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
