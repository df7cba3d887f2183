using System.Diagnostics;
using Corral.Agent.Contract;
using Corral.Diagnostics;
using Corral.Lifecycle;
using Corral.Listeners;
using Corral.Logging;
using Corral.Os;
using Corral.Settings;
using Corral.Supervision;

namespace Corral.Processes;

/// <summary>
/// The thin OS layer under the arbiter: starts worker processes that inherit the listeners and one
/// end of a control socketpair, reads their control lines, and reports their exits, all as events
/// into the master's loop. Spawns happen on the loop's thread only, one at a time: the listeners are
/// made inheritable just for the fork, so nothing else the master starts can take them.
/// </summary>
public sealed class ProcessHost(
    AppTarget initialApp,
    IReadOnlyList<Listener> listeners,
    string agentPath,
    string acceptLeader,
    string? errorLogPath,
    Action<MasterEvent> post) : IProcessHost
{
    private static readonly string[] StrippedVariables =
        ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", ConfigLoader.CmdArgsVariable, AgentOptions.EnvironmentVariable,
            Upgrade.FdsVariable, Upgrade.FromVariable, Upgrade.AcceptLeaderVariable];

    private readonly Dictionary<int, Process> _processes = [];
    private readonly Dictionary<int, AppTarget> _apps = [];

    private string? _gcSummaryLogged;

    /// <summary>The master's <see cref="Os.AffinityDirectory"/>, told to every worker; null: none.</summary>
    public string? AffinityDir { get; init; }

    /// <summary>
    /// The master's error log: where captured stacks are written, and the GC budget given to the workers is
    /// said (once, and again when a reload changes it); null: nowhere.
    /// </summary>
    public IMasterLog? Log { get; init; }

    /// <summary>How long a capture of a worker's stacks may take before it is given up.</summary>
    public static readonly TimeSpan CaptureBound = TimeSpan.FromSeconds(5);

    private readonly HashSet<int> _capturing = [];

    /// <summary>What the next spawn runs (the dev server swaps it after each good build).</summary>
    public AppTarget App { get; set; } = initialApp;

    /// <summary>What the live workers run, and what the next spawn runs: the builds that must stay (see ProjectBuilder.Collect).</summary>
    public IEnumerable<AppTarget> AppsInUse => _apps.Values.Append(App);

    public int Spawn(CorralConfig config, bool spare)
    {
        var app = App;
        // Checked at each spawn, not only at start: `current` may now point at a release built with hooks off.
        if (AppTarget.RuntimeConfigProblem(app.DisplayPath, app.RuntimeConfigPath) is { } problem)
        {
            throw new SpawnException(problem);
        }
        var (parentFd, childFd) = Native.SocketPair();
        var psi = new ProcessStartInfo(app.FileName)
        {
            UseShellExecute = false,
            // The app's own folder, as IIS and `dotnet run` do: WebApplication takes its content root
            // (appsettings.json, wwwroot) from the working directory. --chdir overrides it.
            WorkingDirectory = config.Chdir is null ? app.WorkingDirectory : Directory.GetCurrentDirectory(),
        };
        foreach (var a in app.Arguments)
        {
            psi.ArgumentList.Add(a);
        }
        foreach (var name in StrippedVariables)
        {
            psi.Environment.Remove(name);
        }
        // An app that links the agent in (for Native AOT: docs/deployment.md) carries Corral.Agent.dll; run
        // as a .dll, the runtime would refuse corral's copy beside its own, so its own is the hook.
        var ownAgent = Path.Combine(Path.GetDirectoryName(app.DisplayPath) ?? ".", "Corral.Agent.dll");
        var agent = File.Exists(ownAgent) ? ownAgent : agentPath;
        var hooks = psi.Environment.TryGetValue("DOTNET_STARTUP_HOOKS", out var existing) && !string.IsNullOrEmpty(existing)
            ? agent + Path.PathSeparator + existing
            : agent;
        psi.Environment["DOTNET_STARTUP_HOOKS"] = hooks;
        switch (config.Gc)
        {
            case "workstation":
                psi.Environment["DOTNET_gcServer"] = "0";
                break;
            case "server":
                psi.Environment["DOTNET_gcServer"] = "1";
                break;
        }
        config.WorkerUser?.SetEnvironment(psi.Environment);
        foreach (var kv in config.RawEnv)
        {
            var eq = kv.IndexOf('=');
            psi.Environment[kv[..eq]] = kv[(eq + 1)..];
        }
        // --max-worker-memory: a GC budget the runtime knows, unless the app chose its own (its
        // runtimeconfig.json is read only then: not at every spawn of a corral without a limit).
        var appGcProperties = config.MaxWorkerMemoryCeiling > 0 ? GcBudget.ReadConfigProperties(app.RuntimeConfigPath) : [];
        var (gcVariables, gcSummary) = GcBudget.For(config, psi.Environment, appGcProperties, Environment.ProcessorCount);
        foreach (var (name, value) in gcVariables)
        {
            psi.Environment[name] = value;
        }
        if (gcSummary is not null && gcSummary != _gcSummaryLogged)
        {
            _gcSummaryLogged = gcSummary;
            Log?.Info(gcSummary);
        }
        var agentOptions = AgentOptionsBuilder.Build(config, listeners, childFd, acceptLeader, errorLogPath);
        agentOptions.AffinityDir = AffinityDir;
        // --jit-profile: one per app in the master's private folder (Native AOT apps have no runtimeconfig, and nothing to compile).
        var jitProfile = config.JitProfile && AffinityDir is { } profiles && File.Exists(app.RuntimeConfigPath)
            ? JitProfilePath(profiles, app) : null;
        agentOptions.JitProfile = jitProfile;
        agentOptions.Spare = spare;
        psi.Environment[AgentOptions.EnvironmentVariable] = agentOptions.ToJson();

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        try
        {
            var bootNice = BootNice(config.BootNice);
            ListenerBinder.WithInheritable(listeners, [childFd],
                () => bootNice is { } nice ? TaskPriority.ForkAt(nice, _masterNice, process.Start) : process.Start());
            if (bootNice is not null)
            {
                _booting.Add(process.Id);
            }
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException)
        {
            Native.Close(parentFd);
            throw new SpawnException($"{app.FileName}: {e.Message}");
        }
        finally
        {
            Native.Close(childFd);
        }

        var pid = process.Id;
        _processes[pid] = process;
        _apps[pid] = app;
        // Read now, while the pid is surely this worker's; removed once it is gone (see RuntimeFiles).
        var runtimeFiles = RuntimeFiles.Of(pid, psi.Environment.TryGetValue("TMPDIR", out var tmp) ? tmp : null);
        // What a worker that dies by a signal leaves of its JIT profile (a graceful exit renames it into place).
        var ownJitProfile = jitProfile is null ? null : jitProfile + "." + pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        process.Exited += (_, _) =>
        {
            runtimeFiles?.Remove();
            RuntimeFiles.TryDelete(ownJitProfile);
            int code;
            try
            {
                code = process.ExitCode;
            }
            catch (InvalidOperationException)
            {
                code = -1;
            }
            post(new MasterEvent.Exited(pid, code));
        };
        if (process.HasExited)
        {
            // Exited may have fired before the handler was attached; posting twice is harmless.
            runtimeFiles?.Remove();
            post(new MasterEvent.Exited(pid, process.ExitCode));
        }
        _ = ControlReader.ReadAsync(pid, parentFd, post);
        return pid;
    }

    /// <summary>The app's JIT profile in the master's folder: named after the app, so a HUP's new build of it replays the old one's.</summary>
    public static string JitProfilePath(string folder, AppTarget app) =>
        Path.Combine(folder, Path.GetFileNameWithoutExtension(app.DisplayPath) + ".jitprofile");

    // --boot-nice: the master's own nice, and whether it may raise a worker back to it (read once: neither changes).
    private readonly int _masterNice = TaskPriority.Current();
    private readonly bool _mayRaiseBack = BootPriority.MayRaiseBack(TaskPriority.HasCapSysNice(), Native.NiceLimit(), TaskPriority.Current());
    private bool _bootNiceSaid;
    private bool _raiseFailSaid;
    private readonly HashSet<int> _booting = [];

    private int? BootNice(int setting)
    {
        var nice = BootPriority.BootNice(setting, _masterNice, _mayRaiseBack, out var why);
        if (why is not null && !_bootNiceSaid)
        {
            _bootNiceSaid = true;
            Log?.Debug(why);
        }
        return nice;
    }

    public void WorkerReady(int pid)
    {
        if (!_booting.Remove(pid))
        {
            return;
        }
        var threads = TaskPriority.SetAll(pid, _masterNice, out var error);
        if (error is null)
        {
            Log?.Debug($"Worker (pid:{pid}) back at nice {_masterNice} ({threads} threads)");
        }
        else if (!_raiseFailSaid)
        {
            _raiseFailSaid = true;
            Log?.Warning($"Worker (pid:{pid}) stays at its boot priority: raising it back to nice {_masterNice} failed: {error}");
        }
    }

    public bool Signal(int pid, int signal)
    {
        try
        {
            return Native.Kill(pid, signal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    public void CaptureStacks(int pid, string why, int? osThreadId)
    {
        lock (_capturing)
        {
            if (!_capturing.Add(pid))
            {
                // One at a time per worker: the running one posts StacksCaptured for this pid too.
                return;
            }
        }
        _ = Task.Run(async () =>
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                var threads = await StackCapture.CaptureAsync(pid, CaptureBound).ConfigureAwait(false);
                Log?.Error($"Stacks of worker (pid:{pid}) ({why}): {threads.Count} threads, captured in {StackCapture.Elapsed(started)}"
                    + StackFormat.Format(threads, osThreadId));
            }
            catch (StackCaptureException e)
            {
                Log?.Warning($"Worker (pid:{pid}) stacks not captured ({why}): {e.Message}");
            }
            catch (Exception e)
            {
                // A trace TraceEvent cannot read, an unexpected reply: said once, never fatal to the master.
                Log?.Warning($"Worker (pid:{pid}) stacks not captured ({why}): {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
            }
            finally
            {
                lock (_capturing)
                {
                    _capturing.Remove(pid);
                }
                post(new MasterEvent.StacksCaptured(pid));
            }
        });
    }

    public void Forget(int pid)
    {
        _booting.Remove(pid);
        _apps.Remove(pid);
        if (_processes.Remove(pid, out var p))
        {
            p.Dispose();
        }
    }
}
