using System.Globalization;
using System.Runtime.InteropServices;
using Corral.Agent.Contract;

namespace Corral.Agent.Os;

/// <summary>
/// -u/--user and -g/--group: the worker becomes that user before any of the app runs (Gunicorn's
/// set_owner_process in its worker's init). The master stays root, so that it can bind, re-bind on
/// USR2 and hand log files over; workers cannot be started as another user by .NET's Process.Start,
/// so each one switches itself first thing, in the agent.
/// <para>
/// glibc applies setgroups, setgid and setuid to every thread of the process (and so does musl), and
/// the runtime's threads that already run (finalizer, signal handling, diagnostics server) are its
/// pthreads: after the switch no thread is root. That is checked, thread by thread, in /proc/self/task,
/// rather than trusted.
/// </para>
/// </summary>
internal static partial class Credentials
{
    [LibraryImport("libc", EntryPoint = "setgroups", SetLastError = true)]
    private static unsafe partial int SetGroups(nuint size, uint* list);

    [LibraryImport("libc", EntryPoint = "setgid", SetLastError = true)]
    private static partial int SetGid(uint gid);

    [LibraryImport("libc", EntryPoint = "setuid", SetLastError = true)]
    private static partial int SetUid(uint uid);

    /// <summary>Switches the whole process to <paramref name="user"/>: null when done and checked, else what went wrong, as one line.</summary>
    public static unsafe string? SwitchTo(WorkerUser user)
    {
        var groups = user.Groups.Length > 0 ? user.Groups : [user.Gid];
        string Fail(string call) =>
            $"cannot switch the worker to user {user.Name} (uid {user.Uid}, gid {user.Gid}): {call}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}";

        // Groups first: once the uid is not 0, the process may no longer change them.
        fixed (uint* list = groups)
        {
            if (SetGroups((nuint)groups.Length, list) != 0)
            {
                return Fail("setgroups");
            }
        }
        if (SetGid(user.Gid) != 0)
        {
            return Fail("setgid");
        }
        if (SetUid(user.Uid) != 0)
        {
            return Fail("setuid");
        }
        return Check(user, groups);
    }

    /// <summary>
    /// A worker that switched and then was refused a file (its TLS key, the app's appsettings.json):
    /// the error says as whom, since the same path opens fine for root.
    /// </summary>
    public static string Explain(string error, WorkerUser? user) =>
        user is not null && (error.Contains("is denied", StringComparison.Ordinal) || error.Contains("Permission denied", StringComparison.Ordinal))
            ? $"{error} (the worker runs as user {user.Name}, uid {user.Uid}, gid {user.Gid}: -u/-g)"
            : error;

    /// <summary>Every thread's real, effective, saved and filesystem ids and its groups are the user's: null, else which thread is not.</summary>
    private static string? Check(WorkerUser user, uint[] groups)
    {
        var want = groups.Distinct().Order().ToArray();
        IEnumerable<string> tasks;
        try
        {
            tasks = Directory.EnumerateDirectories("/proc/self/task").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"switched to user {user.Name}, but cannot check its threads: {e.Message}";
        }
        foreach (var task in tasks)
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(Path.Combine(task, "status"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // the thread has ended
            }
            var uids = Ids(lines, "Uid:");
            var gids = Ids(lines, "Gid:");
            var theirGroups = Ids(lines, "Groups:").Distinct().Order().ToArray();
            if (uids.Length != 4 || uids.Any(u => u != user.Uid) || gids.Length != 4 || gids.Any(g => g != user.Gid) || !theirGroups.SequenceEqual(want))
            {
                return $"cannot switch the worker to user {user.Name} (uid {user.Uid}, gid {user.Gid}): thread {Path.GetFileName(task)} still has uids {string.Join(' ', uids)}, gids {string.Join(' ', gids)}, groups {string.Join(' ', theirGroups)}";
            }
        }
        return null;
    }

    private static uint[] Ids(string[] lines, string key)
    {
        var line = lines.FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
        return line is null ? [] : [.. line[key.Length..].Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)
            .Select(v => uint.Parse(v, NumberStyles.None, CultureInfo.InvariantCulture))];
    }
}
