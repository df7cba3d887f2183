using System.Globalization;
using System.Text.Json.Nodes;
using Corral.Agent.Contract;
using Corral.Agent.Metrics;
using Corral.Supervision;

namespace Corral.Metrics;

/// <summary>
/// The master's view for observers, kept on the master's loop (never on another thread): folds each
/// worker's stats lines into totals, sees workers come and go (boot time, restarts by reason), makes
/// snapshots, and carries out `corral ctl` commands through the arbiter.
/// </summary>
public sealed class Observatory
{
    private readonly Dictionary<int, LastStats> _last = [];
    private readonly Dictionary<string, long> _requests = [];
    private readonly Dictionary<string, long> _restarts = MasterMetrics.RestartReasons.ToDictionary(r => r, _ => 0L);
    private readonly Dictionary<int, (WorkerState State, bool Retiring, int Generation)> _known = [];
    private readonly HashSet<int> _bootObserved = [];
    private readonly Dictionary<int, double> _bootCpu = [];
    private readonly HashSet<int> _killedByCtl = [];
    private readonly ListenQueue _queue;
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private int _maxGeneration;

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
        var present = new HashSet<int>();
        foreach (var w in arbiter.Workers)
        {
            present.Add(w.Pid);
            _known[w.Pid] = (w.State, w.Retiring, w.Generation);
            _maxGeneration = Math.Max(_maxGeneration, w.Generation);
            if (w.ReadyAt is { } ready && _bootObserved.Add(w.Pid))
            {
                Metrics.ObserveBoot((ready - w.SpawnedAt).TotalSeconds);
                // Read as the ready message is handled (the loop runs this right after it): what the
                // worker's boot cost, its warm-up included. Null if it is already gone.
                if (Os.ProcStat.CpuSeconds(w.Pid) is { } cpu)
                {
                    _bootCpu[w.Pid] = cpu;
                    Metrics.ObserveBootCpu(cpu);
                }
            }
        }
        if (present.Count == _known.Count)
        {
            return;
        }
        foreach (var (pid, last) in _known.Where(k => !present.Contains(k.Key)).ToList())
        {
            _known.Remove(pid);
            _bootObserved.Remove(pid);
            _bootCpu.Remove(pid);
            var killed = _killedByCtl.Remove(pid);
            if (arbiter.Stopping)
            {
                continue; // the master stops: nobody is replaced
            }
            var reason = last.State switch
            {
                WorkerState.Killing => "timeout",
                WorkerState.Booting or WorkerState.Ready => "crash",
                _ when killed => "kill",
                _ when last.Retiring => "max-requests",
                _ when last.Generation < _maxGeneration => "reload",
                _ => null, // TTOU / ctl remove: scaled down, not replaced
            };
            if (reason is not null)
            {
                _restarts[reason]++;
                Metrics.AddRestart(reason);
            }
        }
    }

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
            Stopping = arbiter.Stopping,
            Listeners = [.. _queue.Read().Select(d => new ListenerView(d.Listener, d.Queued))],
            Workers = [.. arbiter.Workers.OrderBy(w => w.Age).Select(w =>
            {
                var last = _last.GetValueOrDefault(w.Pid);
                return new WorkerView(w.Pid, w.State.ToString().ToLowerInvariant(), w.Retiring, w.Generation,
                    Math.Round((now - w.SpawnedAt).TotalSeconds, 3),
                    w.ReadyAt is { } r ? Math.Round((r - w.SpawnedAt).TotalSeconds, 3) : null,
                    _bootCpu.TryGetValue(w.Pid, out var cpu) ? Math.Round(cpu, 3) : null,
                    w.Served, w.InFlight, last?.Rss ?? 0, last?.Pss ?? 0, last?.GcHeap ?? 0);
            })],
            RequestsTotal = _requests.Values.Sum(),
            RequestsByClass = byClass,
            Restarts = new Dictionary<string, long>(_restarts),
        };
    }

    /// <summary>
    /// One `corral ctl` command, on the loop: status, add N, remove N, reload, kill PID. The reply is
    /// JSON: {"ok":true,"message":...,"status":{...}} or {"ok":false,"error":...}.
    /// </summary>
    public string Execute(Arbiter arbiter, string command)
    {
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var verb = words.Length > 0 ? words[0] : "";
        switch (verb)
        {
            case "status" when words.Length == 1:
                return Ok("", JsonNode.Parse(Snapshot(arbiter).ToJson()));
            case "add" or "remove" when words.Length == 2:
                if (!int.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || n > 1024)
                {
                    return Error($"{verb}: N must be a whole number from 1 to 1024, not '{words[1]}'");
                }
                if (arbiter.Stopping)
                {
                    return Error("the master is stopping");
                }
                for (var i = 0; i < n; i++)
                {
                    arbiter.OnSignal(verb == "add" ? Signals.TTIN : Signals.TTOU);
                }
                return Ok($"workers wanted: {arbiter.DesiredWorkers}");
            case "reload" when words.Length == 1:
                arbiter.OnSignal(Signals.HUP);
                return Ok("reloading: new workers boot, then the old ones drain");
            case "kill" when words.Length == 2:
                if (!int.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                {
                    return Error($"kill: PID must be a number, not '{words[1]}'");
                }
                if (!arbiter.KillWorker(pid))
                {
                    return Error($"kill: {pid} is not a serving worker of this master");
                }
                _killedByCtl.Add(pid);
                return Ok($"worker {pid}: sent TERM; it drains and is replaced");
            default:
                return Error($"unknown command '{command}': expected status, add N, remove N, reload or kill PID");
        }
    }

    private static string Ok(string message, JsonNode? status = null)
    {
        var o = new JsonObject { ["ok"] = true, ["message"] = message };
        if (status is not null)
        {
            o["status"] = status;
        }
        return o.ToJsonString();
    }

    private static string Error(string text) => new JsonObject { ["ok"] = false, ["error"] = text }.ToJsonString();
}
