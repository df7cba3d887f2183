using System.Diagnostics;
using System.Runtime.InteropServices;
using Corral.Agent.Boot;
using Corral.Agent.Contract;
using Corral.Agent.Logging;
using Corral.Agent.Metrics;
using Corral.Agent.Os;

namespace Corral.Agent;

/// <summary>
/// Everything the agent does in a worker that needs no ASP.NET Core type: read the options, open the
/// control channel, heartbeat from the thread pool, handle signals, and watch for the app's host.
/// </summary>
internal static class AgentRuntime
{
    private static AgentOptions? s_options;
    private static ControlChannel? s_control;
    private static Timer? s_heartbeat;
    private static Timer? s_statsTimer;
    private static readonly List<PosixSignalRegistration> s_signals = [];
    private static int s_hostTaken;
    private static int s_started;
    private static volatile bool s_ready;
    private static volatile bool s_stopAsked;
    private static int s_stoppedWhileBootingLogged;
    private static int s_quickExit;
    private static int s_exitLogged;

    public static AgentOptions Options => s_options ?? throw new InvalidOperationException("corral agent not started");
    public static AgentLog Log { get; private set; } = null!;
    public static RequestStats Stats { get; } = new();
    public static WorkerStats Metrics { get; } = new();

    /// <summary>--statsd-host: the worker's statsd client; null (the default) leaves the request path untouched.</summary>
    public static StatsdClient? Statsd { get; private set; }

    /// <summary>Called by the startup hook, or by the module initializer in a Native AOT app. Outside corral (no options) it does nothing at all.</summary>
    public static void Start()
    {
        // The startup hook and the module initializer (Native AOT apps) may both call it.
        if (Interlocked.Exchange(ref s_started, 1) != 0)
        {
            return;
        }
        var json = Environment.GetEnvironmentVariable(AgentOptions.EnvironmentVariable);
        if (string.IsNullOrEmpty(json))
        {
            return;
        }
        // The worker's signals work even if they came ignored (a master started from a script with `&`):
        // before .NET's signal handling starts, which would keep them ignored.
        foreach (var signal in Signals.WorkerHandled)
        {
            InheritedSignals.Unignore(signal);
        }
        // Child processes the app starts must not think they are corral workers.
        Environment.SetEnvironmentVariable(AgentOptions.EnvironmentVariable, null);
        Environment.SetEnvironmentVariable("DOTNET_STARTUP_HOOKS", null);

        s_options = AgentOptions.FromJson(json);
        Log = new AgentLog(s_options.Logs.ErrorLogFile, s_options.Logs.Level);
        // The app's own console lines carry the worker's pid, as the error log's do (before the app builds its logging).
        PidLineWriter.Install(Environment.ProcessId);
        if (s_options.ProcessTitle is { } title)
        {
            ProcessTitle.Set(title);
        }
        if (s_options.Statsd is { Host.Length: > 0 } statsd)
        {
            Statsd = new StatsdClient(statsd.Host, statsd.Prefix, statsd.Tags, Log.Warning);
            Log.Statsd = Statsd;
        }
        s_control = new ControlChannel(s_options.ControlFd);
        if (s_options.Protocol != AgentOptions.CurrentProtocol)
        {
            // Only a Native AOT app's linked-in copy can differ from the corral that runs it.
            FailBoot($"the app links a Corral.Agent of protocol {AgentOptions.CurrentProtocol}, and this corral speaks protocol {s_options.Protocol}: publish the app again against this corral's Corral.Agent");
        }
        // -u/-g: before any of the app runs; the error log is already open (a worker that cannot switch says why, and never serves).
        if (s_options.User is { } user && Credentials.SwitchTo(user) is { } switchError)
        {
            FailBoot(switchError);
        }
        // As the worker's user, before any of the app is compiled.
        if (s_options.JitProfile is { } jitProfile)
        {
            JitProfile.Start(jitProfile, Log.Debug);
        }
        s_control.WatchForClose(OnMasterGone);
        OutOfMemoryWatch.Install();

        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            if (!s_ready && s_stopAsked && e.ExceptionObject is OperationCanceledException)
            {
                // The generic host cancels a start that a stop interrupts, and the app's Run() throws:
                // the worker did as it was told (a TERM during a reload or a recycle), it did not fail.
                LogStoppedWhileBooting();
                Environment.Exit(ExitCodes.Ok);
            }
            var text = e.ExceptionObject is Exception ex ? $"{ex.GetType().FullName}: {ex.Message}" : "unhandled exception";
            ReportError(s_ready ? text : "the app failed to start: " + text);
        };
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            if (!s_ready && Volatile.Read(ref s_hostTaken) == 0)
            {
                ReportError("the app exited without building an ASP.NET Core host (corral runs ASP.NET Core apps built on the generic host: WebApplication.CreateBuilder or Host.CreateDefaultBuilder)");
            }
            if (s_ready)
            {
                // For the next worker: what this one compiled, booting and serving.
                JitProfile.Save(Log.Debug);
            }
            // The last counts, before the control channel closes: the master folds them into its totals.
            SendStats();
            FlushControl();
            LogExiting();
            Statsd?.Dispose();
        };

        // Gunicorn's worker signals: INT and QUIT stop at once, TERM drains (the host's own handler
        // does that: the agent only notes that a stop was asked), USR1 reopens the log files.
        s_signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            s_stopAsked = true;
            if (!s_ready && HostControl.StopApplication is null)
            {
                // Before the host runs, TERM's default action ends the process at once (nothing is
                // served yet); once it runs, the host cancels its start (above).
                LogStoppedWhileBooting();
            }
            else
            {
                // The host drains (its own handler); once it is gone the process is on its way out,
                // and a second TERM (the master's stop meeting a recycle) must not end it before its
                // exit handlers: the last stats, "Worker exiting".
                ctx.Cancel = true;
            }
        }));
        s_signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGQUIT, QuickExit));
        s_signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, QuickExit));
        s_signals.Add(PosixSignalRegistration.Create((PosixSignal)Signals.USR1, ctx =>
        {
            ctx.Cancel = true;
            Log.Reopen();
            AccessLogWriter.Current?.Reopen();
        }));
        // --spare-workers: USR2 promotes a spare (its admission gate opens); a worker that serves ignores it.
        s_signals.Add(PosixSignalRegistration.Create((PosixSignal)Signals.USR2, ctx =>
        {
            ctx.Cancel = true;
            if (s_options?.Spare == true && s_promoted.TrySetResult())
            {
                Log.Info($"Spare worker promoted: taking connections (pid: {Environment.ProcessId})");
            }
        }));

        // A System.Threading.Timer fires on the thread pool: a starved or deadlocked pool falls silent,
        // and the master's --timeout notices.
        // Guarded: nothing the agent runs on a timer may take the worker down.
        s_heartbeat = new Timer(Background.Timer("Heartbeat", SendHeartbeat), null, TimeSpan.Zero, Protocol.HeartbeatInterval);
        s_statsTimer = new Timer(Background.Timer("Worker stats", SendStats), null, Protocol.StatsInterval, Protocol.StatsInterval);

        DiagnosticListener.AllListeners.Subscribe(new HostObserver());
    }

    private static void LogStoppedWhileBooting()
    {
        if (Interlocked.Exchange(ref s_stoppedWhileBootingLogged, 1) == 0)
        {
            Log.Info($"Worker stopped while booting (pid: {Environment.ProcessId})");
        }
    }

    public static void SendHeartbeat()
    {
        var (served, inFlight, busyMs) = Stats.Snapshot();
        var sentMs = Protocol.MonotonicMs(Stopwatch.GetTimestamp(), Stopwatch.Frequency);
        s_control?.Send(Coalesced.Heartbeat, Protocol.FormatHeartbeat(served, inFlight, busyMs, sentMs));
    }

    public static void SendStats() => s_control?.Send(Coalesced.Stats, Protocol.Stats + " " + Metrics.Format(Stats.InFlight));

    /// <summary>How long a worker on its way out waits for a full control socket to take its last lines.</summary>
    private static readonly TimeSpan ExitFlush = TimeSpan.FromSeconds(1);

    /// <summary>On the way out: the last lines (an error, the last stats) reach the master if it reads within <see cref="ExitFlush"/>.</summary>
    private static void FlushControl() => s_control?.Flush(ExitFlush);

    public static void ReportReady()
    {
        // What the listeners speak first: the master logs it before it counts the worker ready.
        if (Serving is { } serving)
        {
            s_control?.Send(Protocol.Serving + " " + serving().ToJson());
        }
        s_ready = true;
        s_control?.Send(Protocol.Ready);
    }

    public static bool IsReady => s_ready;

    private static readonly TaskCompletionSource s_promoted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A spare's promotion (SIGUSR2 from the master): completes when it may take connections.</summary>
    public static Task Promoted => s_promoted.Task;

    /// <summary>The listeners' protocols and the app's URLs they replaced (<see cref="Protocol.Serving"/>), sent just before "ready"; null: nothing to say.</summary>
    public static Func<ServingReport>? Serving { get; set; }

    /// <summary>A likely reason for a boot failure, sent to the master without logging it again.</summary>
    public static void SendBootError(string text) => s_control?.Send(Protocol.FormatError(text));

    /// <summary>The thread pool is starved (once per episode): queued work waited <paramref name="delayMs"/>; <paramref name="serving"/> says what the worker serves.</summary>
    public static void ReportStarved(long delayMs, string? serving) => s_control?.Send(Protocol.FormatStarved(delayMs, serving));

    public static void ReportRecycle(string? reason = null) =>
        s_control?.Send(reason is null ? Protocol.Recycle : Protocol.Recycle + " " + reason);

    /// <summary>A request still runs past --request-timeout and its grace: the master replaces this worker.</summary>
    public static void ReportHung(HungRequest request) =>
        s_control?.Send(Protocol.FormatHung(request.OsThreadId, request.Method, request.Path, request.RequestId));

    /// <summary>The worker is about to die: say why (and wait, bounded, for the line to leave).</summary>
    public static void ReportError(string text)
    {
        text = Credentials.Explain(text, s_options?.User);
        Log?.Error(text);
        s_control?.Send(Protocol.FormatError(text));
        FlushControl();
    }

    /// <summary>True for the first host only: an app that builds several hosts gets corral on the first.</summary>
    public static bool TryClaimHost() => Interlocked.Exchange(ref s_hostTaken, 1) == 0;

    /// <summary>Boot failures found while taking over the host: say why, then stop the process.</summary>
    public static void FailBoot(string text)
    {
        ReportError(text);
        Environment.Exit(ExitCodes.WorkerBootError);
    }

    /// <summary>
    /// "Worker exiting", once: Ctrl-C sends INT to the worker and the master sends it QUIT (each
    /// handler runs on a thread of its own), or a quick stop meets a graceful one's exit handlers.
    /// </summary>
    private static void LogExiting()
    {
        if (Interlocked.Exchange(ref s_exitLogged, 1) == 0)
        {
            Log.Info($"Worker exiting (pid: {Environment.ProcessId})");
        }
    }

    private static void QuickExit(PosixSignalContext ctx)
    {
        ctx.Cancel = true;
        if (Interlocked.Exchange(ref s_quickExit, 1) != 0)
        {
            return; // the first INT or QUIT is already ending the process
        }
        LogExiting();
        SendStats();
        FlushControl();
        AccessLogWriter.Current?.Flush();
        Statsd?.Flush();
        // Not Environment.Exit: the host's ProcessExit handler would wait for a graceful stop.
        Native.Exit(ExitCodes.Ok);
    }

    private static void OnMasterGone()
    {
        Log.Warning("Master is gone, stopping worker");
        s_stopAsked = true;
        var drain = HostControl.Drain;
        if (drain is null)
        {
            // The app's host does not run yet: nothing is served, and no master will ever use it.
            Native.Exit(ExitCodes.Ok);
            return;
        }
        // As TERM: this worker stops accepting at once (a new corral can bind the port), and drains.
        drain();
        // If the stop hangs, leave anyway.
        Thread.Sleep(TimeSpan.FromSeconds(Math.Max(1, Options.GracefulTimeout) + 5));
        Native.Exit(ExitCodes.Ok);
    }

    private sealed class HostObserver : IObserver<DiagnosticListener>, IObserver<KeyValuePair<string, object?>>
    {
        public void OnNext(DiagnosticListener listener)
        {
            if (listener.Name == "Microsoft.Extensions.Hosting")
            {
                listener.Subscribe(this);
            }
        }

        public void OnNext(KeyValuePair<string, object?> evt)
        {
            if (evt.Key == "HostBuilding" && evt.Value is not null)
            {
                if (!TryClaimHost())
                {
                    return;
                }
                try
                {
                    HostTakeover.Apply(evt.Value);
                }
                catch (Exception ex) when (ex is FileNotFoundException or TypeLoadException or InvalidCastException)
                {
                    FailBoot($"cannot take over the app's host: {ex.Message} (is it an ASP.NET Core app?)");
                }
            }
            else if (evt.Key == "HostBuilt" && evt.Value is not null)
            {
                HostTakeover.Verify(evt.Value);
            }
        }

        public void OnCompleted()
        {
        }

        public void OnError(Exception error)
        {
        }
    }
}
