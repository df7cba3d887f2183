using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Corral.Agent.Os;

/// <summary>open(2) with O_APPEND and write(2): what .NET's file APIs do not offer.</summary>
internal static partial class AppendFile
{
    private const int O_WRONLY = 0x1, O_CREAT = 0x40, O_APPEND = 0x400, O_CLOEXEC = 0x80000;
    private const int EINTR = 4, EAGAIN = 11, EACCES = 13, EPERM = 1;

    /// <summary>Files are created as .NET and Gunicorn create them: 0666, less the umask.</summary>
    private const int CreateMode = 0x1B6; // 0666

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint Write(int fd, byte* buffer, nuint count);

    /// <summary>Opens (creating it if needed) a file for appending, close-on-exec.</summary>
    public static SafeFileHandle OpenAppend(string path)
    {
        int fd;
        do
        {
            fd = Open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, CreateMode);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var message = $"cannot open '{path}' for appending: {Marshal.GetPInvokeErrorMessage(errno)}";
            throw errno is EACCES or EPERM ? new UnauthorizedAccessException(message) : new IOException(message);
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// Writes all of <paramref name="bytes"/>: one write(2), repeated only for what a partial write
    /// left (a pipe or a terminal may take part of it). Errors (a full disk, a closed pipe) drop the rest.
    /// </summary>
    public static unsafe void WriteAll(int fd, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* start = bytes)
        {
            var done = 0;
            while (done < bytes.Length)
            {
                var n = Write(fd, start + done, (nuint)(bytes.Length - done));
                if (n >= 0)
                {
                    done += (int)n;
                    continue;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR)
                {
                    continue;
                }
                if (errno == EAGAIN)
                {
                    // A non-blocking stdout (a pipe someone else set O_NONBLOCK on): wait until it drains.
                    if (Native.WaitWritable(fd, 1000))
                    {
                        continue;
                    }
                }
                return;
            }
        }
    }
}
