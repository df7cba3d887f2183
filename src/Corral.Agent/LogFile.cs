using System.Text;

namespace Corral.Agent;

/// <summary>
/// A log destination that USR1 can reopen (logrotate renames the file, then signals): a file opened
/// for append, or the process's stdout or stderr, which are never reopened.
/// </summary>
internal sealed class LogFile
{
    private readonly string? _path;
    private readonly bool _stdout;
    private readonly object _gate = new();
    private TextWriter _writer;

    /// <param name="path">A file, or null / "-" for the standard stream.</param>
    /// <param name="stdout">The standard stream is stdout (access log) rather than stderr (error log).</param>
    public LogFile(string? path, bool stdout)
    {
        _path = path is null or "-" ? null : path;
        _stdout = stdout;
        _writer = Open();
    }

    /// <summary>Writes lines and flushes; a full disk or a closed stream never takes the process down.</summary>
    public void Write(IEnumerable<string> lines)
    {
        lock (_gate)
        {
            try
            {
                foreach (var line in lines)
                {
                    _writer.WriteLine(line);
                }
                _writer.Flush();
            }
            catch (IOException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    public void Reopen()
    {
        lock (_gate)
        {
            if (_path is null)
            {
                return;
            }
            var old = _writer;
            _writer = Open();
            old.Dispose();
        }
    }

    private TextWriter Open()
    {
        if (_path is null)
        {
            return _stdout ? new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) : Console.Error;
        }
        var stream = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        return new StreamWriter(stream, new UTF8Encoding(false));
    }
}
