using Corral.Agent.Contract;
using Corral.Logging;
using Corral.Settings;


namespace Corral.Supervision;

/// <summary>
/// The master's decisions, Gunicorn's arbiter.py in one class: which workers to start, replace, drain
/// and kill, given what happened (signals, messages, exits) and what time it is. It owns no thread and
/// makes no OS call itself: effects go through <see cref="IProcessHost"/>, time comes from a
/// <see cref="TimeProvider"/>, so tests drive it with fakes.
/// </summary>
public sealed class Arbiter
{
    /// <summary>How long a timed-out worker gets between SIGABRT and SIGKILL.</summary>
    public static readonly TimeSpan AbortGrace = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long SIGABRT waits for a timed-out worker's stacks to be captured (they are taken before
    /// it is aborted, so that WORKER TIMEOUT says what was stuck): sent when the capture ends, or after this.
    /// </summary>
    public static readonly TimeSpan StacksBound = TimeSpan.FromSeconds(3);

    /// <summary>At most one capture of a worker's stacks per this interval for its starved thread pool (a capture costs the worker a pause).</summary>
    public static readonly TimeSpan StarvationStacksInterval = TimeSpan.FromSeconds(60);

    /// <summary>Back-off after a worker fails to boot: doubled per failure, up to the cap.</summary>
    public static readonly TimeSpan BackoffFirst = TimeSpan.FromMilliseconds(500);
    public static readonly TimeSpan BackoffCap = TimeSpan.FromSeconds(30);

    /// <summary>
    /// After the master itself did not run (SIGSTOP, a debugger, a VM pause, swap: a tick much later than
    /// the previous one), how long it waits before judging worker timeouts again. The workers' messages
    /// sent meanwhile wait unread in the control sockets, or were coalesced while those were full: the
    /// master reads them, and each worker sends a fresh heartbeat, before anyone is judged silent.
    /// </summary>
    public static readonly TimeSpan StallGrace = TimeSpan.FromSeconds(3);

    private readonly IProcessHost _host;
    private readonly TimeProvider _clock;
    private readonly IMasterLog _log;
    private readonly Func<CorralConfig?> _reloadConfig;
    private readonly Dictionary<int, Worker> _workers = [];
    private readonly Queue<WorkerExit> _exits = [];

    private int _generation;
    private int _lastGeneration;
    private int _nextAge;
    private bool _booted;
    private int _bootFailures;
    private DateTimeOffset _nextSpawnAt;
    private DateTimeOffset? _stopDeadline;
    private (CorralConfig Config, int Desired)? _configBeforeReload;
    private bool _stopKillSent;
    private DateTimeOffset? _lastTick;
    private DateTimeOffset _judgeTimeoutsFrom;

    public Arbiter(CorralConfig config, IProcessHost host, TimeProvider clock, IMasterLog log, Func<CorralConfig?> reloadConfig)
    {
        Config = config;
        DesiredWorkers = config.Workers;
        _host = host;
        _clock = clock;
        _log = log;
        _reloadConfig = reloadConfig;
        ConfigureScaler(config);
    }

    /// <summary>A number in [0, 1) for each worker's --max-worker-lifetime-jitter (tests make it fixed).</summary>
    public Func<double> Random { get; set; } = System.Random.Shared.NextDouble;

    /// <summary>The host's cores, for --max-recycle-cpu (a share of all of them).</summary>
    public int Cores { get; set; } = Environment.ProcessorCount;

    /// <summary>How many of the latest boots' CPU costs the estimate of the next one is made from.</summary>
    public const int BootCostsKept = 8;

    private readonly Queue<double> _bootCosts = [];
    private DateTimeOffset? _lastLifetimeRecycleAt;
    private bool _stretchLogged;

    /// <summary>
    /// What booting a worker cost, in CPU seconds (its boot and warm-up, read when it said ready): the
    /// estimate of what the next recycle costs is the median of the latest <see cref="BootCostsKept"/>.
    /// </summary>
    public void OnBootCost(int pid, double cpuSeconds)
    {
        if (!double.IsFinite(cpuSeconds) || cpuSeconds < 0)
        {
            return;
        }
        _bootCosts.Enqueue(cpuSeconds);
        if (_bootCosts.Count > BootCostsKept)
        {
            _bootCosts.Dequeue();
        }
    }

    /// <summary>The CPU seconds a boot costs, from the latest boots (median); null before any was measured.</summary>
    public double? BootCost
    {
        get
        {
            if (_bootCosts.Count == 0)
            {
                return null;
            }
            var sorted = _bootCosts.Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
    }

    /// <summary>
    /// The share of all cores (percent) that --max-worker-lifetime would spend on boots, on average:
    /// each of the wanted workers boots once per lifetime (plus half its jitter), at <see cref="BootCost"/>
    /// each. Null when there is no age limit or no cost measured yet.
    /// </summary>
    public double? LifetimeBootShare
    {
        get
        {
            var lifetime = Config.MaxWorkerLifetime + Config.MaxWorkerLifetimeJitter / 2;
            if (Config.MaxWorkerLifetime <= TimeSpan.Zero || BootCost is not { } cost)
            {
                return null;
            }
            return 100 * DesiredWorkers * cost / lifetime.TotalSeconds / Math.Max(1, Cores);
        }
    }

    /// <summary>
    /// The least time between two lifetime recycles while they would cost more than --max-recycle-cpu:
    /// one boot's cost spread at that share of all cores. Zero when under the cap (or no cap).
    /// </summary>
    public TimeSpan LifetimeRecycleGap =>
        Config.MaxRecycleCpu > 0 && LifetimeBootShare is { } share && share > Config.MaxRecycleCpu && BootCost is { } cost
            ? TimeSpan.FromSeconds(cost / (Config.MaxRecycleCpu / 100.0 * Math.Max(1, Cores)))
            : TimeSpan.Zero;

    /// <summary>Where state changes go for systemd (READY=1, RELOADING=1, STOPPING=1); may be null.</summary>
    public Action<string>? Notify { get; set; }

    private bool _reloading;
    private bool _parked;

    public CorralConfig Config { get; private set; }
    /// <summary>How many workers should serve: -w, TTIN/TTOU, ctl add/remove. Spares (--spare-workers) come on top.</summary>
    public int DesiredWorkers { get; private set; }
    public bool Stopping => _stopDeadline is not null;
    public bool Finished { get; private set; }
    public int ExitCode { get; private set; }

    /// <summary>Set when the master halts because of the workers: the reason, for the last log line.</summary>
    public string? HaltReason { get; private set; }

    public IReadOnlyCollection<Worker> Workers => _workers.Values;

    /// <summary>How many of the latest worker exits <see cref="Exits"/> keeps: far more than go in one event of the loop.</summary>
    public const int ExitsKept = 64;

    /// <summary>The latest workers that are gone (at most <see cref="ExitsKept"/>, oldest first): why each went, for observers.</summary>
    public IReadOnlyCollection<WorkerExit> Exits => _exits;

    /// <summary>How many workers have exited since the master started.</summary>
    public long ExitCount { get; private set; }

    /// <summary>The exits after the first <paramref name="seen"/> (of those still kept): what an observer that saw <paramref name="seen"/> has not.</summary>
    public IEnumerable<WorkerExit> ExitsSince(long seen) => _exits.Skip((int)Math.Max(0, _exits.Count - (ExitCount - seen)));

    /// <summary>Episodes of thread-pool starvation the workers reported since the master started (corral_worker_starvation_episodes_total).</summary>
    public long StarvationEpisodes { get; private set; }

    private DateTimeOffset Now => _clock.GetUtcNow();
    private TimeSpan Timeout => Config.Timeout;

    public void Start()
    {
        _lastTick = Now;
        ManageWorkers();
    }

    // ---- events ------------------------------------------------------------------------------

    public void OnSignal(int signal)
    {
        _log.Info($"Handling signal: {Signals.Name(signal)}");
        switch (signal)
        {
            case Signals.TERM:
                Stop(graceful: true);
                break;
            case Signals.INT:
            case Signals.QUIT:
                Stop(graceful: false);
                break;
            case Signals.HUP:
                HangUp();
                break;
            case Signals.WINCH:
                // After USR2: this master's workers drain, the master stays (HUP brings them back).
                _parked = true;
                foreach (var w in _workers.Values.Where(w => w.IsServing).ToList())
                {
                    StopWorker(w, Signals.TERM, StopReason.Parked);
                }
                _log.Info("Stopping this master's workers (WINCH); HUP starts them again, TERM ends the master");
                break;
            case Signals.TTIN:
                ChangeWorkers(1);
                break;
            case Signals.TTOU:
                ChangeWorkers(-1);
                break;
            case Signals.USR1:
                _log.Reopen();
                foreach (var w in _workers.Values)
                {
                    _host.Signal(w.Pid, Signals.USR1);
                }
                break;
            default:
                _log.Warning($"Ignoring signal {Signals.Name(signal)}: not supported yet");
                break;
        }
    }

    public void OnMessage(int pid, Message message)
    {
        if (!_workers.TryGetValue(pid, out var w))
        {
            return;
        }
        if (message.Kind is not (MessageKind.Starved or MessageKind.Hung))
        {
            // Sent from the agent's own thread, not the pool's: no sign that the worker's pool runs.
            w.Heard(SentAt(w, message));
        }
        switch (message.Kind)
        {
            case MessageKind.Ready:
                if (w.MarkReady(Now))
                {
                    _host.WorkerReady(pid);
                    _bootFailures = 0;
                    _log.Debug($"Worker ready (pid: {pid})");
                }
                break;
            case MessageKind.Heartbeat:
                w.Report(message.Served, message.InFlight, message.BusyMs);
                break;
            case MessageKind.Error:
                w.NoteError(message.Text);
                break;
            case MessageKind.Starved:
                OnStarved(w, message);
                break;
            case MessageKind.Recycle:
                switch (message.Text)
                {
                    case Protocol.OutOfMemory:
                        RetireWorker(w, StopReason.OutOfMemory, "ran out of memory (OutOfMemoryException)", _log.Warning);
                        break;
                    case Protocol.Memory:
                        var pss = w.Memory > 0 ? $"PSS {ByteSize.Mib(w.Memory)} > " : "";
                        RetireWorker(w, StopReason.Memory, $"is above --max-worker-memory ({pss}{ByteSize.Mib(Config.MaxWorkerMemory)} after a full GC; it takes no new connections)", _log.Warning);
                        break;
                    default:
                        RetireWorker(w, StopReason.MaxRequests, "reached --max-requests", _log.Info);
                        break;
                }
                break;
            case MessageKind.Hung when message.Hung is { } hung:
                OnHung(w, hung);
                break;
        }
        ManageWorkers();
    }

    /// <summary>
    /// A request still ran past --request-timeout and its grace: the worker is hung for it. Said once per
    /// worker, with the request; its stacks are captured; it retires (successor first, then it drains and
    /// is killed at --graceful-timeout, the escalation of every stopping worker), so its other requests finish.
    /// </summary>
    private void OnHung(Worker w, HungRequest hung)
    {
        if (!w.NoteHung())
        {
            return;
        }
        var why = $"hung on {hung.Method} {hung.Path} (request id {hung.RequestId}) past --request-timeout {Config.RequestTimeout.TotalSeconds:0.###} s";
        // Through RetireWorker: one recycle at a time (a deadline's goes first), said once with the request.
        if (!RetireWorker(w, StopReason.Deadline, why, _log.Error))
        {
            _log.Error($"Worker (pid:{w.Pid}) {why}: "
                + (w.IsServing ? "it is already being replaced; it drains, then is killed" : "it is already stopping; it is killed at --graceful-timeout"));
        }
        _host.CaptureStacks(w.Pid, $"Worker (pid:{w.Pid}) {why}", hung.OsThreadId);
    }

    /// <summary>
    /// A worker's thread pool is starved: queued work waited longer than the agent's threshold (one
    /// report per episode). Logged, counted, and the stacks of its threads captured to show what blocks
    /// them, at most once per <see cref="StarvationStacksInterval"/> per worker.
    /// </summary>
    private void OnStarved(Worker w, Message message)
    {
        StarvationEpisodes++;
        var serving = string.IsNullOrWhiteSpace(message.Text) ? "" : $"; serving: {message.Text}";
        var now = Now;
        var capture = w.IsServing && (w.StarvationStacksAt is not { } last || now - last >= StarvationStacksInterval);
        _log.Warning($"Worker (pid:{w.Pid}) thread pool starved: queued work waited {message.BusyMs} ms "
            + $"(blocking calls on pool threads?){serving}; "
            + (capture ? "capturing its stacks" : $"stacks captured less than {StarvationStacksInterval.TotalSeconds:0} s ago, not again"));
        if (capture)
        {
            w.NoteStarvationStacks(now);
            _host.CaptureStacks(w.Pid, "thread pool starved", null);
        }
    }

    /// <summary>
    /// A capture of the worker's stacks ended (written or given up): a timed-out worker waiting for it
    /// is aborted now.
    /// </summary>
    public void OnStacksCaptured(int pid)
    {
        if (_workers.TryGetValue(pid, out var w) && w.State == WorkerState.Killing && w.AbortPending)
        {
            Abort(w);
        }
    }

    private void Abort(Worker w)
    {
        w.NoteAbortSent(Now);
        if (!w.KillSent)
        {
            _host.Signal(w.Pid, Signals.ABRT);
        }
    }

    public void OnExit(int pid, int exitCode)
    {
        if (!_workers.Remove(pid, out var w))
        {
            return;
        }
        _waitingRetirees.Remove(pid);
        RecordExit(new WorkerExit(pid, w.Generation, w.State, w.StopReason, w.RetireReason, exitCode));
        var expected = w.State is WorkerState.Stopping or WorkerState.Killing || Stopping;
        if (!expected && !w.Spare)
        {
            _promoteWhy = $"it replaces worker (pid:{pid}), which exited";
        }
        if (!expected)
        {
            if (exitCode > 128)
            {
                var signal = exitCode - 128;
                _log.Error(signal == Signals.KILL
                    ? $"Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?"
                    : $"Worker (pid:{pid}) was sent {Signals.Name(signal).ToUpperInvariant()}!");
            }
            else
            {
                _log.Error($"Worker (pid:{pid}) exited with code {exitCode}");
            }
        }

        if ((w.State == WorkerState.Booting || w.BootTimedOut) && !Stopping)
        {
            OnBootFailure(w, exitCode);
        }
        if (Finished)
        {
            return;
        }
        if (Stopping && _workers.Count == 0)
        {
            Finish(ExitCode);
            return;
        }
        ManageWorkers();
    }

    /// <summary>
    /// TTIN (+1), TTOU (-1), `corral ctl add N` / `remove N`: the wanted number of workers changes by
    /// <paramref name="by"/>, to no fewer than one, and workers start or drain (the oldest first) to match.
    /// </summary>
    public void ChangeWorkers(int by)
    {
        if (Scaler is { } scaler)
        {
            // -w MIN:MAX: the range moves, so the next decision keeps the operator's intent.
            scaler.Shift(by, Now);
            DesiredWorkers = Math.Clamp(DesiredWorkers + by, scaler.Min, scaler.Max);
        }
        else
        {
            DesiredWorkers = Math.Max(1, DesiredWorkers + by);
        }
        _promoteWhy = $"the wanted number of workers grew to {DesiredWorkers}";
        ManageWorkers();
    }

    /// <summary>`corral ctl kill PID`: that worker drains (TERM) and a new one takes its place.</summary>
    public bool KillWorker(int pid)
    {
        if (Stopping || !_workers.TryGetValue(pid, out var w) || !w.IsServing)
        {
            return false;
        }
        _log.Info($"Stopping worker (pid:{pid}): asked on the control socket");
        StopWorker(w, Signals.TERM, StopReason.CtlKill);
        _promoteWhy = $"it replaces worker (pid:{pid}), stopped on the control socket";
        ManageWorkers();
        return true;
    }

    /// <summary>
    /// The master read <paramref name="bytes"/> of PSS for worker <paramref name="pid"/> (/proc/PID/smaps_rollup,
    /// about once a second while --max-worker-memory is set). Above the hard ceiling
    /// (--max-worker-memory-ceiling) the worker is killed at once, SIGKILL, even while it drains: a leak
    /// can outrun a drain, and the worker's own thread may be starved. ManageWorkers replaces it.
    /// </summary>
    public void OnMemory(int pid, long bytes)
    {
        if (!_workers.TryGetValue(pid, out var w))
        {
            return;
        }
        w.NoteMemory(bytes);
        var ceiling = Config.MaxWorkerMemoryCeiling;
        if (ceiling <= 0 || bytes <= ceiling || w.KillSent)
        {
            return;
        }
        _log.Error($"Worker (pid:{pid}) is above the memory ceiling ({ByteSize.Mib(bytes)} > {ByteSize.Mib(ceiling)}): killing it");
        w.Kill(Now, StopReason.MemoryCeiling);
        _promoteWhy = $"it replaces worker (pid:{pid}), killed above the memory ceiling";
        _host.Signal(pid, Signals.KILL);
        ManageWorkers();
    }

    /// <summary>Timers: boot and heartbeat timeouts, the sync class's request timeout, kill escalation, stop deadlines.</summary>
    public void Tick()
    {
        var now = Now;
        if (_lastTick is { } last && now - last > StallThreshold && Timeout > TimeSpan.Zero)
        {
            // What the workers sent while the master was not running is still unread: give it time.
            _judgeTimeoutsFrom = now + StallGrace;
            _log.Warning($"The master did not run for {(now - last).TotalSeconds:0.#} s (stopped, paused or starved of CPU): "
                + $"worker timeouts are judged again in {StallGrace.TotalSeconds:0} s, on what the workers sent meanwhile");
        }
        _lastTick = now;
        foreach (var w in _workers.Values.ToList())
        {
            if (w.State == WorkerState.Killing)
            {
                if (w.AbortPending)
                {
                    if (now - w.SignalledAt >= StacksBound)
                    {
                        Abort(w);
                    }
                    continue;
                }
                if (!w.KillSent && now - w.SignalledAt >= AbortGrace)
                {
                    w.NoteKillSent();
                    _host.Signal(w.Pid, Signals.KILL);
                }
                continue;
            }
            if (w.State == WorkerState.Stopping)
            {
                if (!w.KillSent && now - w.SignalledAt >= Config.GracefulTimeout)
                {
                    w.NoteKillSent();
                    _log.Warning($"Worker (pid:{w.Pid}) did not finish within --graceful-timeout: killing it");
                    _host.Signal(w.Pid, Signals.KILL);
                }
                continue;
            }
            if (Timeout > TimeSpan.Zero && now >= _judgeTimeoutsFrom && TimedOut(w, now))
            {
                // Gunicorn's words; then what was stuck: the stacks are captured before SIGABRT (bounded).
                var booting = w.State == WorkerState.Booting;
                _log.Critical($"WORKER TIMEOUT (pid:{w.Pid})");
                _promoteWhy = $"it replaces worker (pid:{w.Pid}), which timed out";
                w.TimeOutAwaitingStacks(now, Timeout);
                _host.CaptureStacks(w.Pid, booting ? "WORKER TIMEOUT, while booting" : "WORKER TIMEOUT", null);
            }
        }

        CheckLifetimes(now);

        if (_stopDeadline is { } deadline && !_stopKillSent && now >= deadline)
        {
            _stopKillSent = true;
            foreach (var w in _workers.Values.Where(w => !w.KillSent))
            {
                w.NoteKillSent();
                _host.Signal(w.Pid, Signals.KILL);
            }
        }
        ManageWorkers();
    }

    /// <summary>
    /// A gap between two ticks (every 200 ms) longer than this means the master did not run. Half the
    /// timeout: a shorter stall cannot make a worker that heartbeats every 0.5 s look silent.
    /// </summary>
    private TimeSpan StallThreshold => TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerSecond, Timeout.Ticks / 2));

    /// <summary>
    /// When the worker sent <paramref name="message"/>: a heartbeat carries the worker's monotonic clock,
    /// the same clock as the master's on one host, so one read late (the master was stopped, or behind)
    /// counts from when it was sent. Other messages, and a time that cannot be (before the worker
    /// started, or ahead of the master's clock), count from now.
    /// </summary>
    private DateTimeOffset SentAt(Worker w, Message message)
    {
        var now = Now;
        if (message.SentMs <= 0)
        {
            return now;
        }
        var age = Protocol.MonotonicMs(_clock.GetTimestamp(), _clock.TimestampFrequency) - message.SentMs;
        var sent = now - TimeSpan.FromMilliseconds(age);
        return age < 0 || sent < w.SpawnedAt ? now : sent;
    }

    private bool TimedOut(Worker w, DateTimeOffset now)
    {
        if (w.State == WorkerState.Booting)
        {
            return now - w.SpawnedAt > Timeout;
        }
        if (now - w.LastSeen > Timeout)
        {
            return true;
        }
        // Gunicorn's sync worker cannot heartbeat while a request runs: a request longer than
        // --timeout is a timed-out worker. The agent reports how long it has been busy.
        return Config.WorkerClass.TimeoutCoversRequests && w.InFlight > 0
            && TimeSpan.FromMilliseconds(w.BusyMs) + (now - w.LastSeen) > Timeout;
    }

    // ---- adaptive worker count (-w MIN:MAX) -------------------------------------------------------

    /// <summary>-w MIN:MAX: what decides the count from the load; null for a fixed count.</summary>
    public Autoscaler? Scaler { get; private set; }

    /// <summary>The least and most workers wanted (both <see cref="DesiredWorkers"/> for a fixed count).</summary>
    public int WorkersMin => Scaler?.Min ?? DesiredWorkers;
    public int WorkersMax => Scaler?.Max ?? DesiredWorkers;

    /// <summary>Changes of the count made by the load since the master started (corral_scale_events_total).</summary>
    public long ScaleUps { get; private set; }
    public long ScaleDowns { get; private set; }

    /// <summary>The latest change made by the load, as logged; null before any.</summary>
    public string? LastScaleEvent { get; private set; }

    /// <summary>The autoscaler of the configuration before a reload: back if the reload fails.</summary>
    private Autoscaler? _scalerBeforeReload;

    private void ConfigureScaler(CorralConfig config)
    {
        var range = config.WorkerRange;
        Scaler = range.Adaptive ? new Autoscaler(range.Min, range.Max, Now) : null;
        Scaler?.UseTimings(config);
    }

    /// <summary>
    /// About twice a second with -w MIN:MAX: <paramref name="queued"/> connections wait in the TCP
    /// listeners' queues (0 when none can be read). With the ready workers' requests in flight against
    /// their slots, the <see cref="Scaler"/> may change the wanted count: logged once, with its reason.
    /// </summary>
    public void OnLoad(long queued)
    {
        if (Scaler is not { } scaler || Stopping || Finished || _parked || _reloading)
        {
            return;
        }
        var ready = _workers.Values.Where(w => w.Generation == _generation && w.State == WorkerState.Ready && !w.Replacing && !w.Spare).ToList();
        var perWorker = Config.WorkerClass.OneRequestAtATime ? 1 : Config.WorkerClass.UsesThreads ? Config.Threads : Config.WorkerConnections;
        var booting = _workers.Values.Any(w => w.Generation == _generation && w.State == WorkerState.Booting);
        var sample = new Autoscaler.LoadSample(Now, Math.Max(0, queued), ready.Sum(w => w.InFlight), ready.Count * perWorker, perWorker, booting);
        if (scaler.OnSample(sample, DesiredWorkers) is not { } decision || decision.To == DesiredWorkers)
        {
            return;
        }
        DesiredWorkers = decision.To;
        if (decision.Up)
        {
            ScaleUps++;
        }
        else
        {
            ScaleDowns++;
        }
        LastScaleEvent = $"Scaling {(decision.Up ? "up" : "down")} to {decision.To} worker{(decision.To == 1 ? "" : "s")}: {decision.Reason}";
        _log.Info(LastScaleEvent);
        if (decision.Up)
        {
            _promoteWhy = "the load wants more workers"; // a ready spare takes the new place at once
        }
        ManageWorkers();
    }

    // ---- decisions ---------------------------------------------------------------------------

    /// <summary>
    /// Gunicorn's manage_workers, with the readiness gate: start workers until the current generation
    /// has enough (replacements of retiring or timed-out workers included); once enough of them are
    /// ready, drain the old ones; above the wanted number, drain the oldest.
    /// </summary>
    private void ManageWorkers()
    {
        if (Stopping || Finished || _parked)
        {
            return;
        }
        AdmitRetiree();
        // A retiring worker whose turn has not come serves on and counts as one of the current workers.
        // Spares (--spare-workers) are not serving workers: they are counted apart (ManageSpares).
        var current = _workers.Values.Where(w => w.Generation == _generation && w.IsServing && !w.Replacing && !w.Spare).ToList();
        var old = _workers.Values.Where(w => w.Generation != _generation && w.IsServing && !w.Spare).OrderBy(w => w.Age).ToList();
        // --reload-strategy rolling: one new worker at a time, each replacing one old worker once ready.
        var rolling = Config.ReloadStrategy == "rolling" && old.Count > 0;
        var booting = current.Count(w => w.State == WorkerState.Booting);
        // A worker is missing (it died, timed out, retires, or more are wanted): a ready spare takes its place first.
        current.AddRange(PromoteSpares(DesiredWorkers - current.Count));
        var now = Now;
        var spawned = 0;
        while (current.Count + spawned < DesiredWorkers && now >= _nextSpawnAt && !(rolling && booting + spawned > 0))
        {
            if (!SpawnWorker())
            {
                break;
            }
            spawned++;
        }

        // Workers of an earlier generation that are still booting will never serve: a newer HUP (or
        // build) superseded them, so they stop now instead of competing for the CPU with their successors.
        // TERM, not QUIT: a worker listens (and takes connections) a moment before it reports ready,
        // and those requests must be answered, not cut off. One with no connection stops at once.
        foreach (var w in _workers.Values.Where(w => w.Generation != _generation && w.State == WorkerState.Booting).ToList())
        {
            StopWorker(w, Signals.TERM, StopReason.SupersededBoot);
        }

        if (current.Count > DesiredWorkers)
        {
            // TTOU, a scale-down or a smaller config: the idlest, then oldest, go first, booting ones before ready ones; one waiting
            // for its turn to be recycled goes before any (it was to go anyway). Before the readiness
            // check below: the workers that stay are the ones that must be ready before others drain.
            foreach (var w in current.OrderBy(w => !w.Retiring).ThenBy(w => w.State == WorkerState.Ready).ThenBy(w => w.InFlight).ThenBy(w => w.Age).Take(current.Count - DesiredWorkers).ToList())
            {
                StopWorker(w, Signals.TERM, StopReason.ScaledDown);
                current.Remove(w);
            }
        }
        var readyCurrent = current.Count(w => w.State == WorkerState.Ready);
        if (rolling)
        {
            var oldReady = old.Where(w => w.State == WorkerState.Ready).ToList();
            foreach (var w in oldReady.Take(Math.Max(0, readyCurrent + oldReady.Count - DesiredWorkers)))
            {
                StopWorker(w, Signals.TERM, StopReason.Reload);
            }
        }
        if (readyCurrent >= DesiredWorkers)
        {
            _configBeforeReload = null;
            if (!_booted)
            {
                _booted = true;
                Notify?.Invoke($"READY=1\nSTATUS=Serving with {readyCurrent} workers\nMAINPID={Environment.ProcessId}");
            }
            else if (_reloading)
            {
                _reloading = false;
                Notify?.Invoke($"READY=1\nSTATUS=Reloaded: serving with {readyCurrent} workers");
            }
            // Old generations (their spares too) and retiring workers go once their successors are ready.
            foreach (var w in _workers.Values.Where(w => w.IsServing && (w.Generation != _generation || w.Replacing)).ToList())
            {
                StopWorker(w, Signals.TERM, w.RetireReason ?? StopReason.Reload);
            }
        }
        ManageSpares(servingReady: readyCurrent >= DesiredWorkers);
        _promoteWhy = null; // no promotion in this event: the reason was not one
    }

    // ---- spares (--spare-workers) ------------------------------------------------------------

    /// <summary>Why the next promotion happens, for its log line: set by the event that left a worker missing.</summary>
    private string? _promoteWhy;

    /// <summary>The ready spares of the current generation, oldest first: the ones that may be promoted.</summary>
    private IEnumerable<Worker> ReadySpares =>
        _workers.Values.Where(w => w.Spare && w.State == WorkerState.Ready && w.Generation == _generation).OrderBy(w => w.Age);

    /// <summary>Up to <paramref name="missing"/> ready spares promoted (oldest first): the ones that now serve.</summary>
    private List<Worker> PromoteSpares(int missing)
    {
        var promoted = new List<Worker>();
        if (missing <= 0)
        {
            return promoted;
        }
        var why = _promoteWhy ?? "a serving worker is missing";
        foreach (var spare in ReadySpares.Take(missing).ToList())
        {
            Promote(spare, why);
            promoted.Add(spare);
        }
        _promoteWhy = null;
        return promoted;
    }

    /// <summary>
    /// The oldest ready spare of the current generation starts serving now (SIGUSR2 opens its admission
    /// gate), logged with <paramref name="why"/>; false if there is none. It then counts as one of the
    /// <see cref="DesiredWorkers"/>: the caller makes room first (raises DesiredWorkers, as
    /// <see cref="ChangeWorkers"/> does), or the surplus is scaled down. A new spare boots on the next
    /// decision. ManageWorkers takes spares first whenever a serving worker is missing, so growing
    /// DesiredWorkers and letting it decide is enough; this is for a caller that wants to know.
    /// </summary>
    public bool PromoteSpare(string why)
    {
        if (Stopping || Finished || _parked || ReadySpares.FirstOrDefault() is not { } spare)
        {
            return false;
        }
        Promote(spare, why);
        return true;
    }

    private void Promote(Worker spare, string why)
    {
        spare.Promote(Now);
        _log.Info($"Promoting spare worker (pid:{spare.Pid}): {why}");
        _host.Signal(spare.Pid, Signals.USR2);
    }

    /// <summary>
    /// Keeps --spare-workers spares of the current generation: more are stopped (booting ones first), and
    /// fewer are booted once every serving worker is ready (<paramref name="servingReady"/>: serving
    /// workers boot first, at start, after a reload and after a crash without a spare left).
    /// </summary>
    private void ManageSpares(bool servingReady)
    {
        var spares = _workers.Values.Where(w => w.Spare && w.IsServing && w.Generation == _generation).ToList();
        var extra = spares.Count - Config.SpareWorkers;
        if (extra > 0)
        {
            foreach (var w in spares.OrderBy(w => w.State == WorkerState.Ready).ThenByDescending(w => w.Age).Take(extra).ToList())
            {
                StopWorker(w, Signals.TERM, StopReason.ScaledDown);
            }
            return;
        }
        var now = Now;
        for (var n = spares.Count; servingReady && n < Config.SpareWorkers && now >= _nextSpawnAt; n++)
        {
            if (!SpawnWorker(spare: true))
            {
                break;
            }
        }
    }

    /// <summary>
    /// <paramref name="w"/> is to be replaced for <paramref name="reason"/>: its successor boots now if no
    /// other recycle is under way, or once its turn comes (it serves meanwhile). Logged once, with
    /// <paramref name="why"/> ("reached --max-requests"). False if it no longer serves or already retires.
    /// The one way a worker starts to retire: other health checks (memory, deadlines) call it too.
    /// </summary>
    public bool RetireWorker(Worker w, StopReason reason, string why, Action<string> log)
    {
        if (w.Spare)
        {
            // A spare serves nobody: it simply goes, and another boots.
            if (!w.IsServing)
            {
                return false;
            }
            log($"Spare worker (pid:{w.Pid}) {why}: stopping it, another spare boots");
            StopWorker(w, Signals.TERM, reason);
            return true;
        }
        if (!w.Retire(reason))
        {
            return false;
        }
        AdmitRetiree();
        if (!w.Replacing)
        {
            _waitingRetirees.Add(w.Pid);
        }
        log(w.Replacing
            ? $"Worker (pid:{w.Pid}) {why}: starting its successor, then it drains"
            : $"Worker (pid:{w.Pid}) {why}: it serves on until its turn to be recycled (one worker is recycled at a time)");
        return true;
    }

    /// <summary>
    /// No storms: a recycle (a retiring worker's successor) may start only when no other is under way (a
    /// retiring worker whose successor boots, or which has not been stopped yet), no worker of the current
    /// generation boots (a crash's replacement, a successor, or a spare while no other spare is ready)
    /// and no reload is replacing the workers. Crashes, timeouts and reloads are not held back by it;
    /// recycles wait for them.
    /// </summary>
    private bool RecycleUnderWay
    {
        get
        {
            var spareReady = ReadySpares.Any();
            return _workers.Values.Any(w => w.IsServing && (w.Replacing || w.Generation != _generation
                || (w.Generation == _generation && w.State == WorkerState.Booting && !(w.Spare && spareReady))));
        }
    }

    /// <summary>The retiring worker whose turn it is (the oldest that asked) starts its replacement, if none is under way.</summary>
    private void AdmitRetiree()
    {
        if (Stopping || _parked || RecycleUnderWay)
        {
            return;
        }
        // Urgent ones first: a worker over its memory limit takes no new connections, a hung one holds a thread.
        var next = _workers.Values.Where(w => w.Retiring && w.IsServing && !w.Replacing)
            .OrderBy(w => w.RetireReason is StopReason.Memory or StopReason.OutOfMemory or StopReason.Deadline ? 0 : 1).ThenBy(w => w.Age).FirstOrDefault();
        if (next is not null && next.StartReplacement())
        {
            _promoteWhy = $"it replaces worker (pid:{next.Pid}), recycled for {Label(next.RetireReason)}, which drains now";
            if (_waitingRetirees.Remove(next.Pid))
            {
                _log.Info($"Worker (pid:{next.Pid}): its turn to be recycled ({Label(next.RetireReason)}): starting its successor, then it drains");
            }
        }
    }

    private readonly HashSet<int> _waitingRetirees = [];

    private static string Label(StopReason? reason) => reason switch
    {
        StopReason.MaxRequests => "--max-requests",
        StopReason.Lifetime => "--max-worker-lifetime",
        StopReason.Memory => "--max-worker-memory",
        StopReason.OutOfMemory => "out of memory",
        StopReason.Deadline => "--request-timeout",
        _ => reason?.ToString() ?? "",
    };

    /// <summary>
    /// --max-worker-lifetime: a ready worker past its lifetime retires, when no other recycle is under
    /// way (it simply waits for its turn: it is not marked) and, while boots would cost more than
    /// --max-recycle-cpu, no sooner than <see cref="LifetimeRecycleGap"/> after the previous lifetime recycle.
    /// </summary>
    private void CheckLifetimes(DateTimeOffset now)
    {
        if (Config.MaxWorkerLifetime <= TimeSpan.Zero || Stopping || _parked || Finished)
        {
            return;
        }
        var gap = LifetimeRecycleGap;
        if (gap == TimeSpan.Zero)
        {
            _stretchLogged = false; // the episode, if any, is over
        }
        var due = _workers.Values.Where(w => w.State == WorkerState.Ready && !w.Retiring && !w.Spare && w.LifetimeDueAt <= now)
            .OrderBy(w => w.LifetimeDueAt).FirstOrDefault();
        if (due is null || RecycleUnderWay || _workers.Values.Any(w => w.Retiring && w.IsServing && !w.Replacing))
        {
            return;
        }
        if (_lastLifetimeRecycleAt is { } last && now - last < gap)
        {
            if (!_stretchLogged)
            {
                _stretchLogged = true;
                _log.Warning($"Recycling stretched: each boot costs ~{BootCost:0.##} CPU-s; --max-worker-lifetime {Config.MaxWorkerLifetime.TotalSeconds:0.#} s "
                    + $"with {DesiredWorkers} workers would spend {LifetimeBootShare:0.#}% of CPU on boots, above {Config.MaxRecycleCpu}% (--max-recycle-cpu, of {Cores} cores): "
                    + $"one lifetime recycle every {gap.TotalSeconds:0.#} s at most, so workers live longer");
            }
            return;
        }
        _lastLifetimeRecycleAt = now;
        RetireWorker(due, StopReason.Lifetime, $"reached --max-worker-lifetime ({due.Lifetime!.Value.TotalSeconds:0.#} s)", _log.Info);
    }

    private bool SpawnWorker(bool spare = false)
    {
        int pid;
        try
        {
            pid = _host.Spawn(Config, spare);
        }
        catch (SpawnException e)
        {
            _log.Error($"Can't start a worker: {e.Message}");
            if (!_booted)
            {
                Halt("Worker failed to boot.", ExitCodes.WorkerBootError, e.Message);
            }
            else if (ReloadCanFail)
            {
                FailReload();
            }
            else
            {
                Backoff();
            }
            return false;
        }
        var now = Now;
        _workers[pid] = new Worker(pid, _generation, _nextAge++, now)
        {
            Lifetime = Config.MaxWorkerLifetime > TimeSpan.Zero ? Config.MaxWorkerLifetime + Config.MaxWorkerLifetimeJitter * Math.Clamp(Random(), 0, 1) : null,
            Spare = spare,
        };
        _log.Info(spare ? $"Booting spare worker with pid: {pid}" : $"Booting worker with pid: {pid}");
        return true;
    }

    private void StopWorker(Worker w, int signal, StopReason reason)
    {
        w.Stop(Now, reason);
        _host.Signal(w.Pid, signal);
    }

    private void RecordExit(WorkerExit exit)
    {
        _exits.Enqueue(exit);
        if (_exits.Count > ExitsKept)
        {
            _exits.Dequeue();
        }
        ExitCount++;
    }

    /// <summary>Why a worker may say nothing at all: the agent did not load (it starts before the app's Main).</summary>
    private const string NoAgent = ", and corral's agent never started in it (a Native AOT app must link it in: docs/deployment.md, \"Native AOT apps\")";

    private void OnBootFailure(Worker w, int exitCode)
    {
        // A worker that never spoke ran without the agent: whatever ended it, say so.
        var why = (w.LastError ?? $"exit code {exitCode}") + (w.HeardFrom ? "" : NoAgent);
        if (!_booted)
        {
            // The very first boot: nothing serves yet, and a broken app will not fix itself.
            Halt("Worker failed to boot.", ExitCodes.WorkerBootError, why);
            return;
        }
        if (w.Generation == _generation && ReloadCanFail)
        {
            _log.Error($"Worker failed to boot (pid:{w.Pid}): {why}");
            FailReload();
            return;
        }
        _log.Error($"Worker failed to boot (pid:{w.Pid}): {why}");
        Backoff();
    }

    /// <summary>A new generation is booting while older workers still serve: if it cannot start, they stay.</summary>
    private bool ReloadCanFail => _generation != 0 && _workers.Values.Any(o => o.Generation < _generation && o.IsServing);

    /// <summary>A reload whose new workers cannot boot (or not even start): keep the old ones serving.</summary>
    private void FailReload()
    {
        _log.Error("Reload failed: keeping the old workers; fix the app and send HUP again");
        _reloading = false;
        Notify?.Invoke("READY=1\nSTATUS=Reload failed: serving with the old workers");
        // TERM: a sibling may already listen and hold connections (see ManageWorkers).
        foreach (var n in _workers.Values.Where(o => o.Generation == _generation && o.IsServing).ToList())
        {
            StopWorker(n, Signals.TERM, StopReason.FailedReload);
        }
        _generation = _workers.Values.Where(o => o.IsServing).Select(o => o.Generation).DefaultIfEmpty(_generation).Max();
        if (_configBeforeReload is { } previous)
        {
            // The old workers run the old configuration: respawns must use it too.
            Config = previous.Config;
            DesiredWorkers = previous.Desired;
            Scaler = _scalerBeforeReload;
            _configBeforeReload = null;
        }
    }

    private void Backoff()
    {
        _bootFailures++;
        var delay = TimeSpan.FromTicks(Math.Min(BackoffCap.Ticks, BackoffFirst.Ticks << Math.Min(_bootFailures - 1, 20)));
        _nextSpawnAt = Now + delay;
        _log.Warning($"Worker boot failed {_bootFailures} time(s) in a row: next attempt in {delay.TotalSeconds:0.#} s");
    }

    /// <summary>
    /// HUP's reload: the configuration read again, a new generation of workers. The master calls it
    /// itself once a project given as APP is rebuilt (it handles that HUP: the build runs first).
    /// False if the new configuration is invalid: nothing changed.
    /// </summary>
    public bool HangUp()
    {
        _parked = false;
        return Reload();
    }

    private bool Reload()
    {
        var config = _reloadConfig();
        if (config is null)
        {
            _log.Error("Reload aborted: the new configuration is invalid (see above); the workers keep running");
            return false;
        }
        _log.Info("Hang up: Master");
        _configBeforeReload = (Config, DesiredWorkers);
        _scalerBeforeReload = Scaler;
        if (config.WorkerRange != Config.WorkerRange)
        {
            DesiredWorkers = config.WorkerRange.Adaptive ? Math.Clamp(DesiredWorkers, config.WorkerRange.Min, config.WorkerRange.Max) : config.Workers;
            ConfigureScaler(config);
        }
        else
        {
            Scaler?.UseTimings(config);
        }
        Config = config;
        ReplaceAllWorkers();
        return true;
    }

    /// <summary>
    /// A new generation of workers with the current configuration (a new build under --reload): they
    /// boot first, the old ones drain once they are ready; if they fail to boot, the old ones stay.
    /// </summary>
    public void ReplaceAllWorkers()
    {
        if (Stopping)
        {
            return;
        }
        _generation = ++_lastGeneration;
        _reloading = true;
        Notify?.Invoke("RELOADING=1\nSTATUS=Reloading: new workers boot");
        ManageWorkers();
    }

    private void Stop(bool graceful)
    {
        if (Stopping)
        {
            if (!graceful)
            {
                // A quick stop during a graceful one: hurry the workers up.
                foreach (var w in _workers.Values)
                {
                    _host.Signal(w.Pid, Signals.QUIT);
                }
            }
            return;
        }
        _stopDeadline = Now + Config.GracefulTimeout;
        Notify?.Invoke("STOPPING=1\nSTATUS=Stopping");
        foreach (var w in _workers.Values)
        {
            StopWorker(w, graceful ? Signals.TERM : Signals.QUIT, StopReason.MasterStopping);
        }
        if (_workers.Count == 0)
        {
            Finish(ExitCode);
        }
    }

    private void Halt(string reason, int exitCode, string detail)
    {
        HaltReason = $"{reason} {detail}".Trim();
        _log.Error($"Reason: {reason} {detail}".TrimEnd());
        ExitCode = exitCode;
        Stop(graceful: false);
    }

    private void Finish(int exitCode)
    {
        ExitCode = exitCode;
        Finished = true;
    }
}
