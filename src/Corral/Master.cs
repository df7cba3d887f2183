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

    public Master(Func<CorralConfig?> reload, string originalDirectory)
    {
        _reload = reload;
        _originalDirectory = originalDirectory;
    }

    public int Run(CorralConfig config, MasterLog log, IReadOnlyDictionary<string, string?> env)
    {
        var finalPidFile = config.PidFile is null ? null : Path.GetFullPath(config.PidFile);
        var pidFile = Upgrade.PidFileFor(finalPidFile, env);
        // After USR2 the old master still runs: this one takes PIDFILE.2.ctl, and the metrics port once the old one is gone.
        var explicitControlSocket = config.IsExplicit(SettingsTable.ControlSocket);
        var controlSocket = config.ControlSocket is null ? null
            : explicitControlSocket || pidFile is null ? config.ControlSocket : pidFile + ".ctl";
        // Before anything is touched (pid file, control socket, listeners), as Gunicorn's pidfile.py refuses.
        if (AlreadyRunning(pidFile, Upgrade.IsUpgraded(env) || finalPidFile is null ? null : finalPidFile + ".2",
            Upgrade.IsUpgraded(env) && explicitControlSocket ? null : controlSocket) is { } running)
        {
            log.Error(running);
            return 1;
        }
        log.Info($"Starting corral {Version}");
        using var statsd = new Metrics.MasterStatsd(log, config);
        AppTarget app;
        Reloader? reloader = null;
        try
        {
            if (config.Reload)
            {
                var project = AppTarget.FindProject(config.App!)
                    ?? throw new AppTarget.AppException($"--reload: APP {config.App} is not a project (a .csproj, or a folder holding exactly one): the dev server rebuilds from sources", 2);
                reloader = new Reloader(project, config.ReloadExtraFiles, log, e => _events.Writer.TryWrite(e));
                app = reloader.BuildInitial();
                if (AppTarget.RuntimeConfigProblem(config.App!, app.RuntimeConfigPath) is { } problem)
                {
                    throw new AppTarget.AppException(problem, 2);
                }
                if (Environment.GetEnvironmentVariable("ASPNETCORE_ENVIRONMENT") is null
                    && !config.RawEnv.Any(e => e.StartsWith("ASPNETCORE_ENVIRONMENT=", StringComparison.Ordinal)))
                {
                    Environment.SetEnvironmentVariable("ASPNETCORE_ENVIRONMENT", "Development");
                }
            }
            else
            {
                app = AppTarget.Resolve(config.App!, log.Info);
            }
        }
        catch (AppTarget.AppException e)
        {
            log.Error(e.Message);
            return e.ExitCode;
        }

        List<Listener> listeners;
        try
        {
            listeners = ListenerBinder.Bind(config.Bind, config.Backlog, env, log.Error);
        }
        catch (BindException e)
        {
            log.Error(e.Message);
            log.Error("Shutting down: Master");
            return 1;
        }
        if (config.CertFile is not null)
        {
            // Every TCP listener serves TLS: say https://, as Gunicorn does (the log, corral ctl status, the metrics' labels).
            listeners = [.. listeners.Select(l => l.Name.StartsWith("http://", StringComparison.Ordinal)
                ? new Listener(l.Socket, "https://" + l.Name["http://".Length..], l.UnixPathToRemove) : l)];
        }

        // --accept-policy pack: the name only this master's workers (and, after USR2, the new master's) know (the agent's AcceptPacking).
        var acceptLeader = Upgrade.AcceptLeaderFor(env);
        var upgrade = new Upgrade(listeners, acceptLeader, log, _originalDirectory, e => _events.Writer.TryWrite(e));
        var tookOver = !Upgrade.IsUpgraded(env);
        var signals = new List<PosixSignalRegistration>();
        try
        {
            if (pidFile is not null)
            {
                try
                {
                    PidFile.Write(pidFile, Environment.ProcessId);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    log.Error($"Can't create the pid file {pidFile}: {e.Message}");
                    log.Error("Shutting down: Master");
                    return 1;
                }
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

            foreach (var sig in Signals.Handled)
            {
                signals.Add(PosixSignalRegistration.Create((PosixSignal)sig, ctx =>
                {
                    ctx.Cancel = true;
                    _events.Writer.TryWrite(new MasterEvent.Signal(sig));
                }));
            }

            var agentPath = Path.Combine(AppContext.BaseDirectory, "Corral.Agent.dll");
            var host = new ProcessHost(app, listeners, agentPath, acceptLeader, config.ErrorLog == "-" ? null : Path.GetFullPath(config.ErrorLog), e => _events.Writer.TryWrite(e));
            var arbiter = new Arbiter(config, host, TimeProvider.System, log, _reload);
            using var systemd = new SystemdNotify(env.GetValueOrDefault("NOTIFY_SOCKET"));
            arbiter.Notify = systemd.Enabled ? systemd.Send : null;
            using var ticker = new Timer(_ => _events.Writer.TryWrite(new MasterEvent.Tick()), null, TickInterval, TickInterval);

            using var observability = Control.Observability.Start(config, controlSocket, deferMetrics: !tookOver, listeners, log, e => _events.Writer.TryWrite(e));
            if (observability is null)
            {
                return 1;
            }
            var observatory = observability.Observatory;

            arbiter.Start();
            reloader?.StartWatching();
            while (!arbiter.Finished)
            {
                var evt = _events.Reader.ReadAsync().AsTask().GetAwaiter().GetResult();
                switch (evt)
                {
                    case MasterEvent.Signal { Number: Signals.USR2 }:
                        log.Info("Handling signal: usr2");
                        upgrade.Start();
                        break;
                    case MasterEvent.UpgradeExited u:
                        log.Warning($"The new master (pid:{u.Pid}) exited with code {u.ExitCode}; this master carries on");
                        break;
                    case MasterEvent.Signal s:
                        arbiter.OnSignal(s.Number);
                        break;
                    case MasterEvent.Control { Message.Kind: MessageKind.Stats } stats:
                        observatory.OnStats(stats.Pid, stats.Message.Text!);
                        break;
                    case MasterEvent.ControlClosed closed:
                        observatory.OnControlClosed(closed.Pid);
                        break;
                    case MasterEvent.Command command:
                        command.Reply.TrySetResult(new Control.CtlHandlers(arbiter, observatory, log).Execute(command.Text));
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
                        break;
                    case MasterEvent.Tick:
                        if (!tookOver && Upgrade.TryTakeOverPidFile(finalPidFile, env, log))
                        {
                            tookOver = true;
                            observability.StartMetrics(arbiter.Config, log, e => _events.Writer.TryWrite(e));
                            if (controlSocket is not null && finalPidFile is not null && controlSocket == finalPidFile + ".2.ctl")
                            {
                                // `corral ctl -p PIDFILE` finds this master now, and the file goes at exit.
                                observability.MoveControlSocket(controlSocket, finalPidFile + ".ctl", log);
                            }
                            pidFile = finalPidFile;
                        }
                        arbiter.Tick();
                        reloader?.Tick(DateTimeOffset.UtcNow);
                        break;
                    case MasterEvent.SourceChanged changed:
                        reloader?.OnChanged(changed.Path, DateTimeOffset.UtcNow);
                        break;
                    case MasterEvent.Rebuilt built when reloader is not null:
                        if (reloader.OnBuilt(built.Result) is { } rebuilt)
                        {
                            log.Info("Reloading: the new build boots, then the old workers drain");
                            host.App = rebuilt;
                            arbiter.ReplaceAllWorkers();
                        }
                        break;
                }
                observatory.AfterEvent(arbiter);
                statsd.AfterEvent(arbiter.Config, arbiter.Workers.Count);
            }
            log.Info("Shutting down: Master");
            return arbiter.ExitCode;
        }
        finally
        {
            reloader?.Dispose();
            foreach (var s in signals)
            {
                s.Dispose();
            }
            // After USR2 the new master shares the unix socket files: they stay.
            ListenerBinder.Close(listeners, removeUnixFiles: !upgrade.HandedOver);
            PidFile.Remove(pidFile, Environment.ProcessId);
        }
    }

    /// <summary>
    /// Why this master must not start, or null: its pid file (or, for a fresh master, PIDFILE.2 of a USR2
    /// upgrade not yet finished) names a running corral, or a master answers on its control socket.
    /// Starting anyway would take the running master's files over and remove them at exit.
    /// </summary>
    private static string? AlreadyRunning(string? pidFile, string? upgradePidFile, string? controlSocket)
    {
        foreach (var path in new[] { pidFile, upgradePidFile })
        {
            if (path is not null && PidFile.RunningMaster(path) is { } pid)
            {
                return $"Already running on PID {pid} (pid file {path}): stop it first, or give this corral another --pid";
            }
        }
        if (controlSocket is not null && Control.ControlServer.Answers(Path.GetFullPath(controlSocket)))
        {
            return $"Already running: a master answers on the control socket {Path.GetFullPath(controlSocket)}: stop it first, or give this corral another --control-socket";
        }
        return null;
    }
}
