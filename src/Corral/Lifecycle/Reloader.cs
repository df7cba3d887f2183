using Corral.Logging;

namespace Corral.Lifecycle;

/// <summary>
/// The development server (--reload, Werkzeug's role): builds the project (Debug, in place), runs each
/// build from a snapshot of its output (so the next build can overwrite bin/ while workers still run:
/// <see cref="ProjectBuilder"/>, which a production run's HUP shares), watches the sources, and on a
/// change rebuilds; a good build replaces the workers gracefully, a failed one leaves them serving and
/// prints the compiler errors. Builds are started from the master's loop thread, the only thread that
/// ever makes the listeners inheritable, so a build can never inherit them.
/// </summary>
public sealed class Reloader : IDisposable
{
    private static readonly string[] Watched = [".cs", ".csproj", ".json", ".cshtml", ".razor", ".props", ".targets", ".config"];
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    private readonly string _projectDir;
    private readonly IMasterLog _log;
    private readonly Action<MasterEvent> _post;
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly HashSet<string> _extraFiles;
    private DateTimeOffset? _changedAt;
    private string? _changedPath;

    public Reloader(string project, IReadOnlyList<string> extraFiles, IMasterLog log, Action<MasterEvent> post)
    {
        _projectDir = Path.GetDirectoryName(project)!;
        _log = log;
        _post = post;
        _extraFiles = extraFiles.Select(Path.GetFullPath).ToHashSet();
        Builder = new ProjectBuilder(project, publish: false, log);
    }

    /// <summary>The builds and their snapshots.</summary>
    public ProjectBuilder Builder { get; }

    /// <summary>The first build, before anything is bound: synchronous; throws on a failed build.</summary>
    public AppTarget BuildInitial() => Builder.BuildNow(maxErrors: 30);

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
        if (Builder.Building || _changedAt is not { } at || now - at < Settle)
        {
            return;
        }
        _changedAt = null;
        _log.Info($"Detected a change in {Path.GetRelativePath(_projectDir, _changedPath!)}: rebuilding");
        Builder.Start(_post);
    }

    /// <summary>Loop thread: a build ended. Returns the app to run now, or null to keep the old workers.</summary>
    public AppTarget? OnBuilt(AppTarget.BuildResult result)
    {
        if (Builder.OnBuilt(result) is { } app)
        {
            return app;
        }
        Builder.Refuse(result);
        return null;
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

    public void Dispose()
    {
        foreach (var w in _watchers)
        {
            w.Dispose();
        }
        Builder.Dispose();
    }
}
