using System.Globalization;

namespace Corral.Lifecycle;

/// <summary>
/// Where a master keeps the builds its workers run: one folder per master,
/// <c>$TMPDIR/corral-builds-PID</c>, holding one folder per build (<c>publish-N</c>, or <c>debug-N</c> for
/// --reload), so that a rebuild never changes files under running workers. A build's folder goes once
/// no worker runs it and it is not the one the next worker will run; the master's folder goes at its
/// exit; a folder left by a master that died without cleaning up (SIGKILL, a crash) goes when the next
/// corral on the machine starts a build and finds its pid gone. TMPDIR rather than XDG_RUNTIME_DIR: a
/// published app (tens of MB) does not belong in a memory-backed runtime folder.
/// </summary>
public static class Snapshots
{
    private const string RootPrefix = "corral-builds-";

    /// <summary>The master's own folder under <paramref name="tempDir"/>.</summary>
    public static string RootFor(string tempDir, int masterPid) => Path.Combine(tempDir, RootPrefix + masterPid.ToString(CultureInfo.InvariantCulture));

    /// <summary>The pid in a master's folder name, or null if the name is not one.</summary>
    public static int? MasterPid(string folderName) =>
        folderName.StartsWith(RootPrefix, StringComparison.Ordinal)
        && folderName.Length > RootPrefix.Length
        && folderName[RootPrefix.Length..].All(char.IsAsciiDigit)
        && int.TryParse(folderName.AsSpan(RootPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
            ? pid : null;

    /// <summary>Build number <paramref name="n"/>'s folder name: <c>publish-N</c> or <c>debug-N</c>.</summary>
    public static string BuildName(bool publish, int n) => (publish ? "publish-" : "debug-") + n.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The build folders (full paths, children of the master's folder) that can go: those that hold
    /// none of <paramref name="inUse"/> (the apps workers run, the app the next worker will run) and
    /// are not <paramref name="building"/> (the folder a build writes into now).
    /// </summary>
    public static IReadOnlyList<string> Unused(IEnumerable<string> buildDirs, IEnumerable<string> inUse, string? building) =>
        [.. buildDirs.Where(d => d != building && !inUse.Any(app => IsUnder(app, d)))];

    /// <summary>Folders of masters that are gone (their pid is not alive), under <paramref name="tempDir"/>: leftovers to remove.</summary>
    public static IReadOnlyList<string> Stale(IEnumerable<string> tempDirChildren, int selfPid, Func<int, bool> isAlive) =>
        [.. tempDirChildren.Where(d => MasterPid(Path.GetFileName(d)) is { } pid && pid != selfPid && !isAlive(pid))];

    private static bool IsUnder(string path, string dir) =>
        path.StartsWith(dir.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal);
}
