using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Corral.Agent.Contract;
using Corral.Lifecycle;
using Corral.Listeners;
using Corral.Logging;
using Corral.Os;
using Corral.Processes;
using Corral.Settings;
using Corral.Supervision;

namespace Corral;

/// <summary>
/// The master process: binds the listeners, then runs one loop that feeds signals, worker messages,
/// worker exits and clock ticks to the <see cref="Arbiter"/>. It never parses HTTP and never
/// runs app code.
/// </summary>
public sealed class Master
{
    public static readonly string Version = typeof(Master).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
    private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(200);

    private readonly Channel<MasterEvent> _events = Channel.CreateUnbounded<MasterEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Func<CorralConfig?> _reload;

    private readonly string _originalDirectory;

    // Set by Run, for its steps (a Master runs once).
    private MasterLog _log = null!;
    private PidFile _pidFile = null!;
    private string? _controlSocket;
    private Reloader? _reloader;

    /// <summary>APP is a project (without --reload): published at start, and again at each HUP.</summary>
    private ProjectBuilder? _publisher;

    /// <summary>A HUP came while a build ran: its result is stale, build again.</summary>
    private bool _publishAgain;
    private Upgrade _upgrade = null!;
    private ServingLog? _serving;

    /// <summary>False in a master started by USR2 until the old master is gone: it then takes the pid file, the control socket's name and the metrics port.</summary>
    private bool _tookOver;

    public Master(Func<CorralConfig?> reload, string originalDirectory)
    {
        _reload = reload;
        _originalDirectory = originalDirectory;
    }

    /// <summary>Runs the master to its end: the process's exit code.</summary>
    public int Run(CorralConfig config, MasterLog log, IReadOnlyDictionary<string, string?> env)
    {
        _log = log;
        _pidFile = PidFile.ForMaster(config.PidFile, env);
        // After USR2 the old master still runs: this one takes PIDFILE.2.ctl, and the metrics port once the old one is gone.
        _controlSocket = _pidFile.ControlSocketFor(config);
        if (RefusalToStart(config, env) is { } running)
        {
            log.Error(running);
            return ExitCodes.Error;
        }
        log.Info(config.ProcName is { } name ? $"Starting corral {Version} ({name})" : $"Starting corral {Version}");
        Agent.Os.ProcessTitle.Set(Agent.Os.ProcessTitle.For(config.ProcName, "master"));
        using var statsd = new Metrics.MasterStatsd(log, config);
        // A project's first publish takes a minute: a HUP meanwhile (the default action would end
        // corral) is kept, and handled once corral serves: the sources are published again.
        var earlyHup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true;
            _log.Info("HUP while corral starts: handled once it serves");
            _events.Writer.TryWrite(new MasterEvent.Signal(Signals.HUP));
        });
        if (!TryBuildApp(config, out var app, out var appExitCode))
        {
            earlyHup.Dispose();
            return appExitCode;
        }
        if (!TryBind(config, env, out var listeners))
        {
            earlyHup.Dispose();
            _reloader?.Dispose();
            _publisher?.Dispose();
            return ExitCodes.Error;
        }
        // -u/-g: what the workers write (logs, unix sockets) is handed over to their user; again after USR1 reopens the logs.
        FileOwnership.HandOver(config, listeners, log);

        // --accept-policy pack: the name only this master's workers (and, after USR2, the new master's) know (the agent's AcceptPacking).
        var acceptLeader = Upgrade.AcceptLeaderFor(env);
        _upgrade = new Upgrade(listeners, acceptLeader, log, _originalDirectory, Post);
        _tookOver = !Upgrade.IsUpgraded(env);
        var signals = new List<PosixSignalRegistration> { earlyHup };
        try
        {
            if (!_pidFile.TryWrite(log))
            {
                log.Error("Shutting down: Master");
                return ExitCodes.Error;
            }
            foreach (var l in listeners)
            {
                log.Info($"Listening at: {l.Name} ({Environment.ProcessId})");
            }
            log.Info($"Using worker: {config.WorkerClass}");
            if (config.WorkerClass.OneRequestAtATime && config.Threads > 1)
            {
                log.Warning("--threads is ignored by the sync worker class (one request at a time); use -k gthread");
            }
            RegisterSignals(signals);
            earlyHup.Dispose();
            return Serve(config, app, listeners, acceptLeader, env, statsd);
        }
        finally
        {
            _reloader?.Dispose();
            _publisher?.Dispose();
            foreach (var s in signals)
            {
                s.Dispose();
            }
            // After USR2 the new master shares the unix socket files: they stay.
            ListenerBinder.Close(listeners, removeUnixFiles: !_upgrade.HandedOver);
            _pidFile.Remove();
        }
    }

    /// <summary>
    /// Why this master must not start, or null: checked before anything is touched (pid file, control
    /// socket, listeners), as Gunicorn's pidfile.py refuses. The pid file names a running corral (see
    /// <see cref="PidFile.AlreadyRunning"/>), or a master answers on the control socket (unless this
    /// master, started by USR2, was given that socket: the old master is meant to answer there).
    /// </summary>
    private string? RefusalToStart(CorralConfig config, IReadOnlyDictionary<string, string?> env)
    {
        if (_pidFile.AlreadyRunning() is { } running)
        {
            return running;
        }
        var controlSocket = Upgrade.IsUpgraded(env) && config.IsExplicit(SettingsTable.ControlSocket) ? null : _controlSocket;
        if (controlSocket is not null && Control.ControlServer.Answers(Path.GetFullPath(controlSocket)))
        {
            return $"Already running: a master answers on the control socket {Path.GetFullPath(controlSocket)}: stop it first, or give this corral another --control-socket";
        }
        return null;
    }

    /// <summary>
    /// The app the workers run: APP resolved; a project published (the builder kept for HUP), or with
    /// --reload built (the reloader kept for the loop). False, said in the log, with the exit code when it cannot be.
    /// </summary>
    private bool TryBuildApp(CorralConfig config, [NotNullWhen(true)] out AppTarget? app, out int exitCode)
    {
        exitCode = 0;
        try
        {
            if (config.Reload)
            {
                var project = AppTarget.FindProject(config.App!)
                    ?? throw new AppTarget.AppException($"--reload: APP {config.App} is not a project (a .csproj, or a folder holding exactly one): the dev server rebuilds from sources", ExitCodes.Usage);
                _reloader = new Reloader(project, config.ReloadExtraFiles, _log, Post);
                app = _reloader.BuildInitial();
                if (AppTarget.RuntimeConfigProblem(config.App!, app.RuntimeConfigPath) is { } problem)
                {
                    throw new AppTarget.AppException(problem, ExitCodes.Usage);
                }
                if (Environment.GetEnvironmentVariable("ASPNETCORE_ENVIRONMENT") is null
                    && !config.RawEnv.Any(e => e.StartsWith("ASPNETCORE_ENVIRONMENT=", StringComparison.Ordinal)))
                {
                    Environment.SetEnvironmentVariable("ASPNETCORE_ENVIRONMENT", "Development");
                }
            }
            else if (AppTarget.Locate(config.App!) is var path && AppTarget.IsProject(path))
            {
                _publisher = new ProjectBuilder(path, publish: true, _log) { WorkerUser = config.WorkerUser, ReadyToRun = config.ReadyToRun };
                app = _publisher.BuildNow(maxErrors: 30);
                if (AppTarget.RuntimeConfigProblem(config.App!, app.RuntimeConfigPath) is { } problem)
                {
                    throw new AppTarget.AppException(problem, ExitCodes.Usage);
                }
            }
            else
            {
                app = AppTarget.Resolve(config.App!);
            }
            return true;
        }
        catch (AppTarget.AppException e)
        {
            // The builds' folder goes (a failed build's is already gone).
            _reloader?.Dispose();
            _publisher?.Dispose();
            _log.Error(e.Message);
            app = null;
            exitCode = e.ExitCode;
            return false;
        }
    }

    /// <summary>Binds -b's listeners (or takes them over: systemd's, an old master's); false, said in the log, if one cannot be.</summary>
    private bool TryBind(CorralConfig config, IReadOnlyDictionary<string, string?> env, out List<Listener> listeners)
    {
        try
        {
            listeners = ListenerBinder.Bind(config.Bind, config.Backlog, env, _log.Error, unixUmask: config.Umask, reusePort: config.ReusePort);
        }
        catch (BindException e)
        {
            _log.Error(e.Message);
            _log.Error("Shutting down: Master");
            listeners = [];
            return false;
        }
        if (config.CertFile is not null)
        {
            // Every TCP listener serves TLS: say https://, as Gunicorn does (the log, corral ctl status, the metrics' labels).
            listeners = [.. listeners.Select(l => l.Name.StartsWith("http://", StringComparison.Ordinal)
                ? new Listener(l.Socket, "https://" + l.Name["http://".Length..], l.UnixPathToRemove) : l)];
        }
        return true;
    }

    /// <summary>Every signal the master handles becomes an event for the loop (the default action cancelled).</summary>
    private void RegisterSignals(List<PosixSignalRegistration> signals)
    {
        foreach (var sig in Signals.Handled)
        {
            signals.Add(PosixSignalRegistration.Create((PosixSignal)sig, ctx =>
            {
                ctx.Cancel = true;
                _events.Writer.TryWrite(new MasterEvent.Signal(sig));
            }));
        }
    }

    /// <summary>
    /// Starts the arbiter and its observers (systemd, the clock, the control socket and metrics), then
    /// feeds it events until it is finished: its exit code.
    /// </summary>
    private int Serve(CorralConfig config, AppTarget app, List<Listener> listeners, string acceptLeader, IReadOnlyDictionary<string, string?> env, Metrics.MasterStatsd statsd)
    {
        var agentPath = Path.Combine(AppContext.BaseDirectory, "Corral.Agent.dll");
        // SignalR across workers: each worker also listens here, for connections another worker forwards.
        using var affinity = AffinityDirectory.Create(env, out var affinityError);
        if (affinity is null)
        {
            _log.Warning($"SignalR connections will not be routed between workers: {affinityError}");
        }
        else
        {
            FileOwnership.HandOverDirectory(affinity.Path, config.WorkerUser, "the workers' forwarding folder", _log);
        }
        var host = new ProcessHost(app, listeners, agentPath, acceptLeader, config.ErrorLog == "-" ? null : Path.GetFullPath(config.ErrorLog), Post) { AffinityDir = affinity?.Path, Log = _log };
        var arbiter = new Arbiter(config, host, TimeProvider.System, _log, _reload);
        _log.Reopened = () => FileOwnership.HandOverLogs(arbiter.Config, _log);
        using var systemd = new SystemdNotify(env.GetValueOrDefault("NOTIFY_SOCKET"));
        arbiter.Notify = systemd.Enabled ? systemd.Send : null;
        _serving = new ServingLog([.. listeners.Select(l => l.Name)], _log);
        // One reader of the accept queues: the metrics show it, the autoscaler (SampleLoad) acts on it.
        _loadQueue = new Metrics.ListenQueue(listeners);
        using var ticker = new Timer(_ => _events.Writer.TryWrite(new MasterEvent.Tick()), null, TickInterval, TickInterval);

        using var observability = Control.Observability.Start(config, _controlSocket, deferMetrics: !_tookOver, _loadQueue, _log, Post);
        if (observability is null)
        {
            return ExitCodes.Error;
        }

        arbiter.Start();
        _reloader?.StartWatching();
        while (!arbiter.Finished)
        {
            var evt = _events.Reader.ReadAsync().AsTask().GetAwaiter().GetResult();
            Dispatch(evt, arbiter, host, observability);
            observability.Observatory.AfterEvent(arbiter);
            statsd.AfterEvent(arbiter.Config, arbiter.Workers.Count);
        }
        _log.Info("Shutting down: Master");
        return arbiter.ExitCode;
    }

    /// <summary>How often the master reads its workers' PSS while --max-worker-memory is set.</summary>
    private static readonly TimeSpan MemoryReadInterval = TimeSpan.FromSeconds(1);

    private long _lastMemoryRead;

    /// <summary>--max-worker-memory: about once a second, each worker's PSS for the arbiter's hard ceiling.</summary>
    private void ReadWorkerMemory(Arbiter arbiter)
    {
        if (arbiter.Config.MaxWorkerMemoryCeiling <= 0 || System.Diagnostics.Stopwatch.GetElapsedTime(_lastMemoryRead) < MemoryReadInterval)
        {
            return;
        }
        _lastMemoryRead = System.Diagnostics.Stopwatch.GetTimestamp();
        foreach (var pid in arbiter.Workers.Where(w => !w.KillSent).Select(w => w.Pid).ToList())
        {
            if (ProcMemory.Pss(pid) is { } pss)
            {
                arbiter.OnMemory(pid, pss);
            }
        }
    }

    /// <summary>How often the master samples the load for -w MIN:MAX (the workers heartbeat as often).</summary>
    private static readonly TimeSpan LoadSampleInterval = TimeSpan.FromMilliseconds(500);

    private long _lastLoadSample;
    private Metrics.ListenQueue? _loadQueue;

    /// <summary>-w MIN:MAX: about twice a second, the listen queues' depth for the arbiter's autoscaler.</summary>
    private void SampleLoad(Arbiter arbiter)
    {
        if (arbiter.Scaler is null || _loadQueue is null || System.Diagnostics.Stopwatch.GetElapsedTime(_lastLoadSample) < LoadSampleInterval)
        {
            return;
        }
        _lastLoadSample = System.Diagnostics.Stopwatch.GetTimestamp();
        arbiter.OnLoad(_loadQueue.Read().Where(d => d.Queued > 0).Sum(d => d.Queued));
    }

    /// <summary>One event of the loop, to whom it concerns: the arbiter, the upgrade, the observers, the reloader.</summary>
    private void Dispatch(MasterEvent evt, Arbiter arbiter, ProcessHost host, Control.Observability observability)
    {
        var observatory = observability.Observatory;
        switch (evt)
        {
            case MasterEvent.Signal { Number: Signals.USR2 }:
                _log.Info("Handling signal: usr2");
                _upgrade.Start();
                break;
            case MasterEvent.Signal { Number: Signals.HUP } when _publisher is not null:
                _log.Info("Handling signal: hup");
                Republish(arbiter);
                break;
            case MasterEvent.Rebuilt built when _publisher is not null:
                OnRepublished(built.Result, arbiter, host);
                break;
            case MasterEvent.UpgradeExited u:
                _log.Warning($"The new master (pid:{u.Pid}) exited with code {u.ExitCode}; this master carries on");
                break;
            case MasterEvent.Signal s:
                arbiter.OnSignal(s.Number);
                break;
            case MasterEvent.Control { Message.Kind: MessageKind.Stats } stats:
                observatory.OnStats(stats.Pid, stats.Message.Text!);
                break;
            case MasterEvent.Control { Message.Kind: MessageKind.Serving } serving:
                _serving?.OnReport(serving.Message.Text!);
                break;
            case MasterEvent.ControlClosed closed:
                observatory.OnControlClosed(closed.Pid);
                break;
            case MasterEvent.StacksCaptured captured:
                arbiter.OnStacksCaptured(captured.Pid);
                break;
            case MasterEvent.Command command:
                command.Reply.TrySetResult(new Control.CtlHandlers(arbiter, observatory, _log).Execute(command.Text));
                break;
            case MasterEvent.Observe observe:
                observe.Reply.TrySetResult(observatory.Snapshot(arbiter));
                break;
            case MasterEvent.Control c:
                arbiter.OnMessage(c.Pid, c.Message);
                break;
            case MasterEvent.Exited x:
                arbiter.OnExit(x.Pid, x.ExitCode);
                host.Forget(x.Pid);
                (_publisher ?? _reloader?.Builder)?.Collect(host.AppsInUse);
                break;
            case MasterEvent.Tick:
                if (!_tookOver && _pidFile.TryTakeOver(_log))
                {
                    TakeOver(arbiter, observability);
                }
                arbiter.Tick();
                ReadWorkerMemory(arbiter);
                SampleLoad(arbiter);
                _reloader?.Tick(DateTimeOffset.UtcNow);
                break;
            case MasterEvent.SourceChanged changed:
                _reloader?.OnChanged(changed.Path, DateTimeOffset.UtcNow);
                break;
            case MasterEvent.Rebuilt built when _reloader is not null:
                if (_reloader.OnBuilt(built.Result) is { } rebuilt)
                {
                    _log.Info("Reloading: the new build boots, then the old workers drain");
                    host.App = rebuilt;
                    arbiter.ReplaceAllWorkers();
                }
                break;
        }
    }

    /// <summary>
    /// HUP with a project as APP: publish it again beside the loop (the workers keep serving, signals
    /// and timeouts keep being handled); <see cref="OnRepublished"/> reloads once it is built.
    /// </summary>
    private void Republish(Arbiter arbiter)
    {
        if (arbiter.Stopping)
        {
            return;
        }
        if (_publisher!.Building)
        {
            _publishAgain = true;
            _log.Info("Reload: a build already runs; publishing again once it ends");
            return;
        }
        _log.Info("Reload: publishing the project again; the workers keep serving meanwhile");
        _publisher.Start(Post);
    }

    /// <summary>A HUP's build ended: a good one reloads onto it (Gunicorn's HUP), a failed one keeps the old workers.</summary>
    private void OnRepublished(AppTarget.BuildResult result, Arbiter arbiter, ProcessHost host)
    {
        if (_publishAgain || arbiter.Stopping)
        {
            _publisher!.Discard();
            if (_publishAgain && !arbiter.Stopping)
            {
                _publishAgain = false;
                _publisher.Start(Post);
            }
            return;
        }
        if (_publisher!.OnBuilt(result) is not { } app)
        {
            _publisher.Refuse(result);
            return;
        }
        var previous = host.App;
        host.App = app;
        if (!arbiter.HangUp())
        {
            host.App = previous;
        }
        _publisher.Collect(host.AppsInUse);
    }

    /// <summary>
    /// A master started by USR2, the old one gone (the pid file already renamed): it serves metrics on
    /// their port now, and its control socket takes the usual name.
    /// </summary>
    private void TakeOver(Arbiter arbiter, Control.Observability observability)
    {
        _tookOver = true;
        observability.StartMetrics(arbiter.Config, _log, Post);
        if (_controlSocket is not null && _pidFile.FinalPath is { } finalPidFile && _controlSocket == finalPidFile + ".2.ctl")
        {
            // `corral ctl -p PIDFILE` finds this master now, and the file goes at exit.
            observability.MoveControlSocket(_controlSocket, finalPidFile + ".ctl", _log);
        }
    }

    private void Post(MasterEvent e) => _events.Writer.TryWrite(e);
}
