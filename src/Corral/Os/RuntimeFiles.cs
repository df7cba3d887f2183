using System.Globalization;

namespace Corral.Os;

/// <summary>
/// The files a .NET runtime makes in its temp folder for debuggers and diagnostic tools:
/// <c>clr-debug-pipe-PID-KEY-in</c>, <c>-out</c> and <c>dotnet-diagnostic-PID-KEY-socket</c>, where KEY is
/// the process's start time in clock ticks since boot (<see cref="ProcStat.StartTime"/>), the folder
/// $TMPDIR or /tmp. The runtime removes them when it exits; a worker that dies by a signal (SIGKILL
/// after --timeout, kill -9, the OOM killer, a crash that aborts) leaves them, and a crash loop
/// would leave three files per attempt. The master removes a gone worker's set.
/// </summary>
public sealed class RuntimeFiles
{
    private RuntimeFiles(IReadOnlyList<string> paths) => Paths = paths;

    /// <summary>The exact paths this worker's runtime uses (present or not).</summary>
    public IReadOnlyList<string> Paths { get; }

    /// <summary>Reads the start time of a live (or not yet reaped) <paramref name="pid"/>; null when /proc no longer has it.</summary>
    public static RuntimeFiles? Of(int pid, string? tmpDir) =>
        ProcStat.Read(pid) is { } stat && ProcStat.StartTime(stat) is { } key ? For(pid, key, tmpDir) : null;

    public static RuntimeFiles For(int pid, ulong key, string? tmpDir)
    {
        var dir = string.IsNullOrEmpty(tmpDir) ? "/tmp" : tmpDir;
        var id = string.Create(CultureInfo.InvariantCulture, $"{pid}-{key}");
        return new RuntimeFiles(
        [
            Path.Combine(dir, $"clr-debug-pipe-{id}-in"),
            Path.Combine(dir, $"clr-debug-pipe-{id}-out"),
            Path.Combine(dir, $"dotnet-diagnostic-{id}-socket"),
        ]);
    }

    /// <summary>Deletes what is left; never throws (a file that is gone or not ours is not the master's problem).</summary>
    public void Remove()
    {
        foreach (var path in Paths)
        {
            TryDelete(path);
        }
    }

    /// <summary>Deletes <paramref name="path"/> if it is there; never throws (gone, or not ours to delete: not the master's problem).</summary>
    public static void TryDelete(string? path)
    {
        try
        {
            if (path is not null)
            {
                File.Delete(path);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
