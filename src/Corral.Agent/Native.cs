using System.Runtime.InteropServices;

namespace Corral.Agent;

internal static partial class Native
{
    private const short PollIn = 0x001, PollOut = 0x004;
    private const int MsgDontWait = 0x40, MsgNoSignal = 0x4000;
    private const int EIntr = 4, EAgain = 11;

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
