using System.Runtime.InteropServices;

namespace Corral.Agent.Os;

internal static partial class Native
{
    private const short PollIn = 0x001, PollOut = 0x004;
    private const int MsgDontWait = 0x40, MsgNoSignal = 0x4000;
    private const int EIntr = 4, EAgain = 11;

    /// <summary>gettid(2): the calling thread's OS thread id (what /proc/PID/task and a stack capture name it by).</summary>
    [LibraryImport("libc", EntryPoint = "gettid")]
    public static partial int GetTid();

    /// <summary>_exit(2): leave now, running no managed shutdown handlers.</summary>
    [LibraryImport("libc", EntryPoint = "_exit")]
    public static partial void Exit(int status);

    /// <summary>poll(2) for POLLIN on one descriptor: for a listening socket, a connection waits in its queue.</summary>
    public static bool WaitReadable(int fd, int timeoutMs)
    {
        var p = new PollFd { Fd = fd, Events = PollIn };
        return Poll(ref p, 1, timeoutMs) > 0 && (p.Revents & PollIn) != 0;
    }

    /// <summary>poll(2) for POLLOUT: a full socket has room again (or is broken: the next send says which).</summary>
    public static bool WaitWritable(int fd, int timeoutMs)
    {
        var p = new PollFd { Fd = fd, Events = PollOut };
        return Poll(ref p, 1, timeoutMs) > 0;
    }

    /// <summary>send(2) without blocking and without SIGPIPE: the bytes sent, or -1 (<paramref name="wouldBlock"/>: the socket is full).</summary>
    public static unsafe int SendNonBlocking(int fd, ReadOnlySpan<byte> bytes, out bool wouldBlock)
    {
        fixed (byte* p = bytes)
        {
            while (true)
            {
                var n = Send(fd, p, (nuint)bytes.Length, MsgDontWait | MsgNoSignal);
                if (n >= 0)
                {
                    wouldBlock = false;
                    return (int)n;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno != EIntr)
                {
                    wouldBlock = errno == EAgain;
                    return -1;
                }
            }
        }
    }

    /// <summary>
    /// Lets go of this process's copy of a listening socket at once, while the descriptor number stays
    /// valid for whoever holds it (Kestrel closes it only once it has stopped): dup3(2) points the number
    /// at a fresh unconnected socket. The listening socket itself lives on in the other processes that
    /// hold it (the master, other workers) and closes with the last of them, which frees the port. Not
    /// shutdown(2), which would stop it for all of them (after USR2, the new master's workers too).
    /// Does nothing unless <paramref name="fd"/> is a listening socket now.
    /// </summary>
    public static unsafe void ReleaseListeningSocket(int fd)
    {
        int listening = 0, size = sizeof(int);
        if (GetSockOpt(fd, SolSocket, SoAcceptConn, &listening, &size) != 0 || listening == 0)
        {
            return;
        }
        var placeholder = Socket(AfUnix, SockStream | OCloexec, 0);
        if (placeholder < 0)
        {
            return;
        }
        Dup3(placeholder, fd, OCloexec);
        Close(placeholder);
    }

    private const int SolSocket = 1, SoAcceptConn = 30, AfUnix = 1, SockStream = 1, OCloexec = 0x80000;

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    private static unsafe partial int GetSockOpt(int fd, int level, int name, int* value, int* length);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "dup3", SetLastError = true)]
    private static partial int Dup3(int oldFd, int newFd, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static unsafe partial nint Send(int fd, byte* buffer, nuint length, int flags);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll")]
    private static partial int Poll(ref PollFd fds, nuint count, int timeoutMs);
}
