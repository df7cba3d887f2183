using System.Buffers;
using System.Text;
using Corral.Agent.Os;
using Microsoft.Win32.SafeHandles;

namespace Corral.Agent.Logging;

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
            _handle = AppendFile.OpenAppend(_path);
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
                AppendFile.WriteAll(_standardFd, buffer.WrittenSpan);
                return;
            }
            AppendFile.WriteAll((int)_handle.DangerousGetHandle(), buffer.WrittenSpan);
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
            fresh = AppendFile.OpenAppend(_path);
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
