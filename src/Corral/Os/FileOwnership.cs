using System.Runtime.InteropServices;
using Corral.Listeners;
using Corral.Logging;
using Corral.Settings;

namespace Corral.Os;

/// <summary>
/// With -u/-g, the master (root) hands what the workers write over to their user, as Gunicorn's
/// glogging does for its log files and sock.py for unix sockets: the log files are created by the
/// master if missing (the worker's user need not be able to create files in their folder) and given
/// to the user, at start, after a USR1 reopen (logrotate's new file) and at a HUP. Only a regular
/// file with one name is handed over, opened without following a symbolic link: never /dev/null,
/// and never what a link planted at a log's path points at (a worker's user that can write the log
/// folder must not get root to chown /etc/shadow to it).
/// </summary>
public static partial class FileOwnership
{
    private const int O_WRONLY = 0x1, O_CREAT = 0x40, O_NONBLOCK = 0x800, O_APPEND = 0x400, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;
    private const int ELOOP = 40, AT_FDCWD = -100, AT_EMPTY_PATH = 0x1000, AT_SYMLINK_NOFOLLOW = 0x100;
    private const uint STATX_TYPE = 0x1, STATX_NLINK = 0x4;
    private const int S_IFMT = 0xF000, S_IFREG = 0x8000;

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "fchown", SetLastError = true)]
    private static partial int FChown(int fd, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "fchownat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int FChownAt(int dirFd, string path, uint uid, uint gid, int flags);

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    /// <summary>At start: the log files and the unix sockets corral bound.</summary>
    public static void HandOver(CorralConfig config, IEnumerable<Listener> listeners, IMasterLog log)
    {
        if (config.WorkerUser is not { } user)
        {
            return;
        }
        HandOverLogs(config, log);
        foreach (var path in listeners.Select(l => l.UnixPathToRemove).OfType<string>())
        {
            if (FChownAt(AT_FDCWD, path, user.Uid, user.Gid, AT_SYMLINK_NOFOLLOW) != 0)
            {
                log.Warning($"Cannot hand the unix socket {path} over to user {user.Name}: {LastError()}");
            }
        }
    }

    /// <summary>
    /// A private folder of the master's (mode 0700) that the workers must reach: the SignalR
    /// forwarding sockets' (they bind there), the published builds' (they run from there). Given to
    /// the workers' user, not opened to everyone; the master, root, keeps its way in.
    /// </summary>
    public static void HandOverDirectory(string path, WorkerIdentity? user, string what, IMasterLog log)
    {
        if (user is not null && FChownAt(AT_FDCWD, path, user.Uid, user.Gid, AT_SYMLINK_NOFOLLOW) != 0)
        {
            log.Warning($"Cannot hand {what} {path} over to user {user.Name}: {LastError()}");
        }
    }

    /// <summary>The error log and the access log files, created if missing, given to the workers' user.</summary>
    public static void HandOverLogs(CorralConfig config, IMasterLog log)
    {
        if (config.WorkerUser is not { } user)
        {
            return;
        }
        foreach (var path in new[] { config.ErrorLog, config.AccessLog }.OfType<string>().Where(p => p != "-"))
        {
            if (HandOverFile(Path.GetFullPath(path), user.Uid, user.Gid) is { } problem)
            {
                log.Warning($"Cannot hand the log file {path} over to user {user.Name} (the workers may not be able to write it): {problem}");
            }
        }
    }

    /// <summary>Creates <paramref name="path"/> if missing and chowns it: null when done (or not a regular file: a device stays as it is), else why not.</summary>
    public static unsafe string? HandOverFile(string path, uint uid, uint gid)
    {
        var fd = Open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0x1B6 /* 0666, less the umask */);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ELOOP)
            {
                // /dev/stderr and friends are links to what is not a file: nothing to hand over.
                return File.ResolveLinkTarget(path, returnFinalTarget: true) is FileInfo { Exists: true } target && !IsDevice(target.FullName)
                    ? "it is a symbolic link (give the file's own path)"
                    : null;
            }
            return Marshal.GetPInvokeErrorMessage(errno);
        }
        try
        {
            var buffer = stackalloc byte[256];
            if (Statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_NLINK, buffer) != 0)
            {
                return LastError();
            }
            var links = *(uint*)(buffer + 16);
            var mode = *(ushort*)(buffer + 28);
            if ((mode & S_IFMT) != S_IFREG)
            {
                return null;
            }
            if (links != 1)
            {
                return $"it has {links} names (hard links)";
            }
            return FChown(fd, uid, gid) == 0 ? null : LastError();
        }
        finally
        {
            Close(fd);
        }
    }

    private static bool IsDevice(string path) => path.StartsWith("/dev/", StringComparison.Ordinal) || path.StartsWith("/proc/", StringComparison.Ordinal);

    private static string LastError() => Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
}
