using System.Diagnostics;
using Corral.Logging;

namespace Corral.Lifecycle;

/// <summary>
/// The development server (--reload, Werkzeug's role): builds the project, runs each build from a
/// snapshot of its output (so the next build can overwrite bin/ while workers still run), watches the
/// sources, and on a change rebuilds; a good build replaces the workers gracefully, a failed one leaves
/// them serving and prints the compiler errors. Builds are started from the master's loop thread, the
/// only thread that ever makes the listeners inheritable, so a build can never inherit them.
/// </summary>
public sealed class Reloader : IDisposable
{
    private static readonly string[] Watched = [".cs", ".csproj", ".json", ".cshtml", ".razor", ".props", ".targets", ".config"];
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    private readonly string _project;
    private readonly string _projectDir;
    private readonly IMasterLog _log;
    private readonly Action<MasterEvent> _post;
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly string _snapshots = Path.Combine(Path.GetTempPath(), $"corral-reload-{Environment.ProcessId}");
    private readonly HashSet<string> _extraFiles;
    private int _builds;
    private DateTimeOffset? _changedAt;
    private string? _changedPath;
    private bool _building;

    public Reloader(string project, IReadOnlyList<string> extraFiles, IMasterLog log, Action<MasterEvent> post)
    {
        _project = project;
        _projectDir = Path.GetDirectoryName(project)!;
        _log = log;
        _post = post;
        _extraFiles = extraFiles.Select(Path.GetFullPath).ToHashSet();
    }

    /// <summary>The first build, before anything is bound: synchronous; throws on a failed build.</summary>
    public AppTarget BuildInitial()
    {
        _log.Info($"Building {_project} (Debug) for --reload");
        return Snapshot(AppTarget.BuildOrThrow(_project, "Debug", _log.Error, maxErrors: 30));
    }

    public void StartWatching()
    {
        Watch(_projectDir, recursive: true, filter: "*");
        foreach (var extra in _extraFiles)
        {
            if (Directory.Exists(extra))
            {
                Watch(extra, recursive: true, filter: "*");
            }
            else
            {
                Watch(Path.GetDirectoryName(extra)!, recursive: false, filter: Path.GetFileName(extra));
            }
        }
        _log.Info($"Watching {_projectDir} for changes ({string.Join(' ', Watched)}){(_extraFiles.Count > 0 ? " and " + string.Join(", ", _extraFiles) : "")}");
    }

    /// <summary>Loop thread: a watched file changed.</summary>
    public void OnChanged(string path, DateTimeOffset now)
    {
        _changedAt = now;
        _changedPath = path;
    }

    /// <summary>Loop thread: once changes have settled and no build runs, start one.</summary>
    public void Tick(DateTimeOffset now)
    {
        if (_building || _changedAt is not { } at || now - at < Settle)
        {
            return;
        }
        _changedAt = null;
        _building = true;
        _log.Info($"Detected a change in {Path.GetRelativePath(_projectDir, _changedPath!)}: rebuilding");
        var process = Process.Start(AppTarget.BuildStartInfo(_project, "Debug"))!;
        _ = Task.Run(async () =>
        {
            using (process)
            {
                var stderr = process.StandardError.ReadToEndAsync();
                var stdout = await process.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
                await process.WaitForExitAsync().ConfigureAwait(false);
                _post(new MasterEvent.Rebuilt(AppTarget.ReadBuildResult(_project, process.ExitCode, stdout + await stderr.ConfigureAwait(false))));
            }
        });
    }

    /// <summary>Loop thread: a build ended. Returns the app to run now, or null to keep the old workers.</summary>
    public AppTarget? OnBuilt(AppTarget.BuildResult result)
    {
        _building = false;
        if (result.TargetPath is null)
        {
            foreach (var e in result.Errors.Take(30))
            {
                _log.Error(e);
            }
            _log.Error($"Reload: {result.Summary}; the old workers keep serving");
            return null;
        }
        return Snapshot(result.TargetPath);
    }

    /// <summary>Copies the build output to a fresh folder; the workers run from there, in the project's folder (as dotnet run).</summary>
    private AppTarget Snapshot(string targetPath)
    {
        var n = ++_builds;
        var dir = Path.Combine(_snapshots, n.ToString(System.Globalization.CultureInfo.InvariantCulture));
        CopyDirectory(Path.GetDirectoryName(targetPath)!, dir);
        // Older snapshots go; running workers keep what they mapped (Linux unlinks, it does not pull).
        foreach (var old in Directory.GetDirectories(_snapshots).Where(d => int.TryParse(Path.GetFileName(d), out var k) && k < n - 1))
        {
            TryDelete(old);
        }
        return AppTarget.ForDll(Path.Combine(dir, Path.GetFileName(targetPath)), _projectDir);
    }

    private void Watch(string dir, bool recursive, string filter)
    {
        var w = new FileSystemWatcher(dir, filter) { IncludeSubdirectories = recursive, NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size };
        FileSystemEventHandler handler = (_, e) => Changed(e.FullPath);
        w.Changed += handler;
        w.Created += handler;
        w.Deleted += handler;
        w.Renamed += (_, e) => Changed(e.FullPath);
        w.EnableRaisingEvents = true;
        _watchers.Add(w);
    }

    private void Changed(string path)
    {
        var relative = Path.GetRelativePath(_projectDir, path);
        var inBuildOutput = relative.Split(Path.DirectorySeparatorChar).Any(p => p is "bin" or "obj" or ".git");
        if (_extraFiles.Contains(path) || (!inBuildOutput && Watched.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase)))
        {
            _post(new MasterEvent.SourceChanged(path));
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
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public void Dispose()
    {
        foreach (var w in _watchers)
        {
            w.Dispose();
        }
        TryDelete(_snapshots);
    }
}
