using System.Runtime.InteropServices;

namespace Corral.Agent;

internal static partial class Native
{
    private const short PollIn = 0x001;

    /// <summary>_exit(2): leave now, running no managed shutdown handlers.</summary>
    [LibraryImport("libc", EntryPoint = "_exit")]
    public static partial void Exit(int status);

    /// <summary>poll(2) for POLLIN on one descriptor: for a listening socket, a connection waits in its queue.</summary>
    public static bool WaitReadable(int fd, int timeoutMs)
    {
        var p = new PollFd { Fd = fd, Events = PollIn };
        return Poll(ref p, 1, timeoutMs) > 0 && (p.Revents & PollIn) != 0;
    }

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
