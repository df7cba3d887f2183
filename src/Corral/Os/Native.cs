using System.Runtime.InteropServices;

namespace Corral.Os;

/// <summary>The few libc calls .NET does not offer. Every OS effect of the master goes through Corral.Os or <see cref="Corral.Processes.ProcessHost"/>.</summary>
internal static partial class Native
{
    private const int F_GETFD = 1, F_SETFD = 2, FD_CLOEXEC = 1;
    private const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000;
    private const int ESRCH = 3;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int socketpair(int domain, int type, int protocol, int* sv);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc")]
    private static partial int umask(int mask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getppid();

    [LibraryImport("libc", EntryPoint = "access", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int access_(string path, int mode);

    public const int W_OK = 2, X_OK = 1;

    public static void SetInheritable(int fd, bool inheritable)
    {
        var flags = fcntl(fd, F_GETFD, 0);
        if (flags < 0)
        {
            throw new IOException($"fcntl(F_GETFD) on fd {fd} failed: errno {Marshal.GetLastPInvokeError()}");
        }
        var wanted = inheritable ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC;
        if (wanted != flags && fcntl(fd, F_SETFD, wanted) < 0)
        {
            throw new IOException($"fcntl(F_SETFD) on fd {fd} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public static bool IsValidFd(int fd) => fcntl(fd, F_GETFD, 0) >= 0;

    /// <summary>Sends a signal; false if the process is already gone.</summary>
    public static bool Kill(int pid, int signal)
    {
        if (kill(pid, signal) == 0)
        {
            return true;
        }
        var errno = Marshal.GetLastPInvokeError();
        return errno == ESRCH ? false : throw new IOException($"kill({pid}, {signal}) failed: errno {errno}");
    }

    public static bool IsAlive(int pid) => kill(pid, 0) == 0 || Marshal.GetLastPInvokeError() != ESRCH;

    /// <summary>A unix stream socketpair, both ends close-on-exec.</summary>
    public static unsafe (int Parent, int Child) SocketPair()
    {
        var fds = stackalloc int[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        {
            throw new IOException($"socketpair failed: errno {Marshal.GetLastPInvokeError()}");
        }
        return (fds[0], fds[1]);
    }

    public static void Close(int fd) => close(fd);

    /// <summary>umask(2): sets the mask and returns the one before.</summary>
    public static int SetUmask(int mask) => umask(mask);

    public static int ParentPid() => getppid();

    /// <summary>access(2): null if this process may use <paramref name="path"/> so (W_OK, X_OK), else why not (strerror).</summary>
    public static string? Access(string path, int mode) =>
        access_(path, mode) == 0 ? null : Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());

    private const int PRIO_PROCESS = 0, RLIMIT_NICE = 13;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setpriority(int which, int who, int prio);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getpriority(int which, int who);

    [LibraryImport("libc")]
    private static partial int gettid();

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int getrlimit(int resource, ulong* rlim);

    /// <summary>The calling thread's id (a task of its own under Linux, with its own nice value).</summary>
    public static int ThreadId() => gettid();

    /// <summary>
    /// setpriority(PRIO_PROCESS, <paramref name="tid"/>): on Linux it sets the nice value of that one task
    /// (thread), not of the whole process; 0 for the calling thread. False with errno when refused or gone.
    /// </summary>
    public static bool SetNice(int tid, int nice, out int errno)
    {
        errno = setpriority(PRIO_PROCESS, tid, nice) == 0 ? 0 : Marshal.GetLastPInvokeError();
        return errno == 0;
    }

    /// <summary>getpriority(PRIO_PROCESS, <paramref name="tid"/>): its nice value; null if it is gone.</summary>
    public static int? GetNice(int tid)
    {
        Marshal.SetLastPInvokeError(0);
        var nice = getpriority(PRIO_PROCESS, tid);
        return nice == -1 && Marshal.GetLastPInvokeError() != 0 ? null : nice;
    }

    /// <summary>RLIMIT_NICE's soft limit (ulong.MaxValue: unlimited): an unprivileged process may lower its nice down to 20 - this.</summary>
    public static unsafe ulong NiceLimit()
    {
        var rlim = stackalloc ulong[2];
        return getrlimit(RLIMIT_NICE, rlim) == 0 ? rlim[0] : 0;
    }
}
