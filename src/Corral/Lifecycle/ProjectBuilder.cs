using System.Diagnostics;
using Corral.Agent.Contract;
using Corral.Logging;
using Corral.Os;

namespace Corral.Lifecycle;

/// <summary>
/// Builds a project given as APP into a fresh folder per build (see <see cref="Snapshots"/>), so a
/// rebuild never changes files under running workers: `dotnet publish -c Release` straight into the
/// folder for a production run (what a deployment runs: static web assets included), or, for the dev
/// server (--reload), `dotnet build -c Debug` in place, its output copied. The first build runs before
/// anything is bound; later ones (HUP, or a change under --reload) run beside the master's loop and end
/// as a <see cref="MasterEvent.Rebuilt"/>. Either way the master says what it builds, where to, how it
/// goes and how long it took.
/// </summary>
public sealed class ProjectBuilder : IDisposable
{
    private readonly IMasterLog _log;
    private readonly string _root;
    private int _builds;
    private string? _buildingDir;

    public ProjectBuilder(string project, bool publish, IMasterLog log)
    {
        Project = project;
        Publish = publish;
        _log = log;
        var temp = Path.GetTempPath();
        _root = Snapshots.RootFor(temp, Environment.ProcessId);
        RemoveStale(temp);
    }

    public string Project { get; }

    /// <summary>-u/-g: the workers' user, who must be able to read the builds (their folder is handed over).</summary>
    public Settings.WorkerIdentity? WorkerUser { get; init; }

    /// <summary>--ready-to-run on: a publish compiles the app ReadyToRun for this machine's runtime (the dev server's Debug builds never: it would slow every rebuild).</summary>
    public bool ReadyToRun { get; init; }

    /// <summary>True: `dotnet publish -c Release`; false: `dotnet build -c Debug` (the dev server).</summary>
    public bool Publish { get; }

    /// <summary>A build runs now (its folder must stay).</summary>
    public bool Building => _buildingDir is not null;

    private string Configuration => Publish ? "Release" : "Debug";

    /// <summary>The first build, before anything is bound: synchronous; on failure writes the compiler errors and throws (exit 1).</summary>
    public AppTarget BuildNow(int maxErrors)
    {
        var (process, dir) = StartBuild();
        var result = Run(process, dir).GetAwaiter().GetResult();
        if (OnBuilt(result) is { } app)
        {
            return app;
        }
        foreach (var e in result.Errors.Take(maxErrors))
        {
            _log.Error(e);
        }
        throw new AppTarget.AppException(result.Summary, ExitCodes.Error);
    }

    /// <summary>
    /// Starts a build beside the loop; <paramref name="post"/> gets its <see cref="MasterEvent.Rebuilt"/>.
    /// Call it from the loop's thread: the only one that makes the listeners inheritable, so the build cannot inherit them.
    /// </summary>
    public void Start(Action<MasterEvent> post)
    {
        var (process, dir) = StartBuild();
        _ = Task.Run(async () => post(new MasterEvent.Rebuilt(await Run(process, dir).ConfigureAwait(false))));
    }

    /// <summary>A build ended: the app to run now, or null (a failed build: its errors are in <paramref name="result"/>).</summary>
    public AppTarget? OnBuilt(AppTarget.BuildResult result)
    {
        var dir = _buildingDir!;
        _buildingDir = null;
        if (result.TargetPath is null)
        {
            TryDelete(dir);
            return null;
        }
        if (Publish)
        {
            // The published folder is the content root (appsettings.json, wwwroot), as a deployment runs it.
            return AppTarget.ForDll(result.TargetPath, dir);
        }
        // The dev server: bin/Debug copied; the workers run in the project's folder, as `dotnet run`.
        CopyDirectory(Path.GetDirectoryName(result.TargetPath)!, dir);
        return AppTarget.ForDll(Path.Combine(dir, Path.GetFileName(result.TargetPath)), Path.GetDirectoryName(Project)!);
    }

    /// <summary>A rebuild failed: the compiler's errors, and one line saying the reload is refused.</summary>
    public void Refuse(AppTarget.BuildResult result)
    {
        foreach (var e in result.Errors.Take(30))
        {
            _log.Error(e);
        }
        _log.Error($"Reload refused: {result.Summary}; the old workers keep serving");
    }

    /// <summary>A build ended and its result is not wanted (a newer one was asked for): its folder goes.</summary>
    public void Discard()
    {
        if (_buildingDir is { } dir)
        {
            _buildingDir = null;
            TryDelete(dir);
        }
    }

    /// <summary>Removes the build folders that no worker runs and that the next worker will not run.</summary>
    public void Collect(IEnumerable<AppTarget> inUse)
    {
        if (!Directory.Exists(_root))
        {
            return;
        }
        foreach (var dir in Snapshots.Unused(Directory.GetDirectories(_root), inUse.Select(a => a.DisplayPath).ToList(), _buildingDir))
        {
            _log.Debug($"Removing the build {dir}: no worker runs it any more");
            TryDelete(dir);
        }
    }

    private (Process Process, string Dir) StartBuild()
    {
        if (!Directory.Exists(_root))
        {
            Directory.CreateDirectory(_root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Os.FileOwnership.HandOverDirectory(_root, WorkerUser, "the builds folder", _log);
        }
        var dir = Path.Combine(_root, Snapshots.BuildName(Publish, ++_builds));
        _buildingDir = dir;
        _log.Info(Publish
            ? $"Publishing {Project} (Release) to {dir}"
            : $"Building {Project} (Debug) for --reload");
        var psi = new ProcessStartInfo(AppTarget.DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] args = Publish
            ? ["publish", Project, "-c", "Release", "-o", dir, "--nologo", "-v", "m", "-clp:NoSummary", .. PublishArguments(ReadyToRun)]
            : ["build", Project, "-c", "Debug", "--nologo", "-v", "q", "-clp:NoSummary", "-t:Build", "-getProperty:TargetPath"];
        foreach (var a in args.Concat(["-p:UseSharedCompilation=false", "--disable-build-servers"]))
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        var process = Process.Start(psi) ?? throw new AppTarget.AppException($"cannot start dotnet to build {Project}", ExitCodes.Error);
        return (process, dir);
    }

    /// <summary>
    /// What a Release publish adds for --ready-to-run: ReadyToRun needs a runtime identifier, this
    /// runtime's own (linux-x64, linux-arm64, linux-musl-x64), and stays framework-dependent as without it.
    /// </summary>
    public static string[] PublishArguments(bool readyToRun) => readyToRun
        ? ["-r", System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier, "--self-contained", "false", "-p:PublishReadyToRun=true"]
        : [];

    /// <summary>Reads the build's output to its end, saying each step and, when it is quiet, that it still runs.</summary>
    private async Task<AppTarget.BuildResult> Run(Process process, string dir)
    {
        var verb = Publish ? "publishing" : "building";
        var started = Stopwatch.StartNew();
        var lastSaid = TimeSpan.Zero;
        var gate = new object();
        using var heartbeat = new Timer(_ =>
        {
            lock (gate)
            {
                if (BuildProgress.Heartbeat(verb, Project, started.Elapsed, started.Elapsed - lastSaid) is { } line)
                {
                    _log.Info(line);
                    lastSaid = started.Elapsed;
                }
            }
        }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        var output = new List<string>();
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            while (await process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                output.Add(line);
                if (Publish && BuildProgress.Step(line) is { } step)
                {
                    lock (gate)
                    {
                        _log.Info("  " + step);
                        lastSaid = started.Elapsed;
                    }
                }
            }
            await process.WaitForExitAsync().ConfigureAwait(false);
            output.Add(await stderr.ConfigureAwait(false));
            await heartbeat.DisposeAsync().ConfigureAwait(false);
            var text = string.Join('\n', output);
            var result = Publish
                ? AppTarget.ReadPublishResult(Project, process.ExitCode, text, dir)
                : AppTarget.ReadBuildResult(Project, process.ExitCode, text);
            if (result.TargetPath is not null)
            {
                _log.Info(BuildProgress.Done(Publish ? "Published" : "Built", Project, started.Elapsed));
            }
            return result;
        }
    }

    /// <summary>Folders left by masters that are gone (SIGKILL, a crash): nothing runs from them any more.</summary>
    private void RemoveStale(string temp)
    {
        try
        {
            foreach (var dir in Snapshots.Stale(Directory.EnumerateDirectories(temp), Environment.ProcessId, Native.IsAlive))
            {
                _log.Info($"Removing {dir}: the builds of a corral master that is gone");
                TryDelete(dir);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>At the master's exit: every build goes (no worker runs any more).</summary>
    public void Dispose() => TryDelete(_root);
}
