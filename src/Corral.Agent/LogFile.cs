using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Corral.Agent;

/// <summary>
/// A log destination that USR1 can reopen (logrotate renames the file, then signals): a file opened
/// with O_APPEND, or the process's stdout or stderr, which are never reopened.
/// <para>
/// The master and every worker (of every generation) write the same files. Each write therefore
/// goes to the end of the file as it is at that moment (O_APPEND: .NET's FileMode.Append only seeks
/// to the end once, and processes then overwrite each other's lines), and each batch of whole lines
/// goes out in one write(2), so that lines from different processes never interleave.
/// </para>
/// </summary>
internal sealed class LogFile
{
    private static readonly UTF8Encoding Utf8 = new(false);

    private readonly string? _path;
    private readonly int _standardFd;
    private readonly object _gate = new();
    private SafeFileHandle? _handle;

    /// <param name="path">A file, or null / "-" for the standard stream.</param>
    /// <param name="stdout">The standard stream is stdout (access log) rather than stderr (error log).</param>
    /// <exception cref="IOException">The file cannot be opened (<see cref="UnauthorizedAccessException"/>: not allowed).</exception>
    public LogFile(string? path, bool stdout)
    {
        _path = path is null or "-" ? null : path;
        _standardFd = stdout ? 1 : 2;
        if (_path is not null)
        {
            _handle = LogNative.OpenAppend(_path);
        }
    }

    /// <summary>
    /// Writes whole lines, in one write(2) (more only if the kernel takes part of it); a full disk
    /// or a closed stream never takes the process down: the lines are dropped.
    /// </summary>
    public void Write(IEnumerable<string> lines)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        foreach (var line in lines)
        {
            Utf8.GetBytes(line, buffer);
            buffer.Write("\n"u8);
        }
        if (buffer.WrittenCount == 0)
        {
            return;
        }
        lock (_gate)
        {
            if (_handle is null)
            {
                LogNative.WriteAll(_standardFd, buffer.WrittenSpan);
                return;
            }
            LogNative.WriteAll((int)_handle.DangerousGetHandle(), buffer.WrittenSpan);
        }
    }

    /// <summary>
    /// USR1: opens the path again (a new file if it was renamed), appending. If that fails, the old
    /// file is kept and the reason returned (null: reopened, or nothing to reopen).
    /// </summary>
    public string? Reopen()
    {
        if (_path is null)
        {
            return null;
        }
        SafeFileHandle fresh;
        try
        {
            fresh = LogNative.OpenAppend(_path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
        lock (_gate)
        {
            var old = _handle;
            _handle = fresh;
            old?.Dispose();
        }
        return null;
    }
}

/// <summary>open(2) with O_APPEND and write(2): what .NET's file APIs do not offer.</summary>
internal static partial class LogNative
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
