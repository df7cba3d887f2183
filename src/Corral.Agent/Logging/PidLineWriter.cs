using System.Buffers;
using System.Globalization;
using System.Text;
using Corral.Agent.Os;

namespace Corral.Agent.Logging;

/// <summary>
/// A worker's Console.Out and Console.Error: every line the app writes (its console logger's
/// "info: Microsoft.Hosting.Lifetime[0]" entries, Console.WriteLine) starts with "[PID] ", so that
/// with several workers a line says which process wrote it, as Gunicorn's error-log lines carry
/// "[pid]". The app is not changed: the agent installs it before the app builds its logging.
/// <para>
/// A JSON object is left as the app wrote it: a line that starts with '{' (the JSON console
/// formatter's one object per line), and with the formatter's Indented option every line up to the
/// one that starts with '}'. A prefix would make them unreadable to a log shipper; their process is
/// told by the pid that scopes or an enricher put in the object. Empty lines stay empty.
/// </para>
/// <para>
/// The cost is one scan for line breaks (vectorized) and one copy into UTF-8 per call, and each
/// call is one write(2) on the standard stream, never buffered: an entry of the console logger
/// (one call) reaches a pipe whole (up to PIPE_BUF), so workers sharing the master's stdout do not
/// cut into each other's entries, and a process that dies at once has lost nothing.
/// </para>
/// </summary>
internal sealed class PidLineWriter : TextWriter
{
    /// <summary>Where the encoded bytes go: the standard stream, or a test's buffer.</summary>
    public delegate void ByteSink(ReadOnlySpan<byte> bytes);

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private readonly ByteSink _sink;
    private readonly string _prefix;
    private readonly Encoder _encoder = Utf8.GetEncoder();
    private readonly object _gate = new();
    private bool _atLineStart = true;
    private bool _lineOpensJson;
    private bool _inJsonBlock;
    private char _lastChar;

    /// <summary>Writes to file descriptor <paramref name="fd"/> (1: stdout, 2: stderr).</summary>
    public PidLineWriter(int fd, int pid)
        : this(bytes => AppendFile.WriteAll(fd, bytes), pid)
    {
    }

    public PidLineWriter(ByteSink sink, int pid)
        : base(CultureInfo.InvariantCulture)
    {
        _sink = sink;
        _prefix = "[" + pid.ToString(CultureInfo.InvariantCulture) + "] ";
        CoreNewLine = ['\n'];
    }

    public override Encoding Encoding => Utf8;

    /// <summary>Replaces Console.Out and Console.Error with writers that prefix the worker's pid.</summary>
    public static void Install(int pid)
    {
        Console.SetOut(new PidLineWriter(1, pid));
        Console.SetError(new PidLineWriter(2, pid));
    }

    public override void Write(char value) => Emit([value], newline: false);

    public override void Write(string? value) => Emit(value, newline: false);

    public override void Write(char[] buffer, int index, int count) => Emit(buffer.AsSpan(index, count), newline: false);

    public override void Write(ReadOnlySpan<char> buffer) => Emit(buffer, newline: false);

    public override void WriteLine() => Emit([], newline: true);

    public override void WriteLine(string? value) => Emit(value, newline: true);

    public override void WriteLine(ReadOnlySpan<char> buffer) => Emit(buffer, newline: true);

    /// <summary>Nothing is buffered: every call has gone out already.</summary>
    public override void Flush()
    {
    }

    private void Emit(ReadOnlySpan<char> text, bool newline)
    {
        if (text.IsEmpty && !newline)
        {
            return;
        }
        lock (_gate)
        {
            // Every line may gain a prefix: room for one per line break, and one for the last line.
            var lines = text.Count('\n') + (newline ? 2 : 1);
            var chars = ArrayPool<char>.Shared.Rent(text.Length + 1 + (lines * _prefix.Length));
            try
            {
                var length = Prefix(text, chars);
                if (newline)
                {
                    length += Prefix("\n", chars.AsSpan(length));
                }
                var bytes = ArrayPool<byte>.Shared.Rent(Utf8.GetMaxByteCount(length));
                try
                {
                    // An encoder: a surrogate pair split over two calls still encodes as one character.
                    var count = _encoder.GetBytes(chars.AsSpan(0, length), bytes, flush: false);
                    if (count > 0)
                    {
                        _sink(bytes.AsSpan(0, count));
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(bytes);
                }
            }
            finally
            {
                ArrayPool<char>.Shared.Return(chars);
            }
        }
    }

    /// <summary>Copies <paramref name="text"/> into <paramref name="output"/> with the prefixes; returns the length written.</summary>
    private int Prefix(ReadOnlySpan<char> text, Span<char> output)
    {
        var written = 0;
        while (!text.IsEmpty)
        {
            if (_atLineStart)
            {
                // Decided at the line's first character, which may come in a later call than the line break before it.
                var first = text[0];
                if (_inJsonBlock)
                {
                    _inJsonBlock = first != '}';
                }
                else if (first == '{')
                {
                    _lineOpensJson = true;
                }
                else if (first != '\n')
                {
                    _prefix.CopyTo(output[written..]);
                    written += _prefix.Length;
                }
                _atLineStart = false;
            }
            var end = text.IndexOf('\n');
            var line = end < 0 ? text : text[..(end + 1)];
            line.CopyTo(output[written..]);
            written += line.Length;
            if (end < 0)
            {
                _lastChar = text[^1];
                break;
            }
            if (_lineOpensJson)
            {
                // "{...}" on one line is a whole object; "{" alone opens an indented one, which ends at a line starting with '}'.
                var last = end > 0 ? text[end - 1] : _lastChar;
                if (last == '\r')
                {
                    last = end > 1 ? text[end - 2] : _lastChar;
                }
                _inJsonBlock = last != '}';
                _lineOpensJson = false;
            }
            _atLineStart = true;
            _lastChar = '\n';
            text = text[(end + 1)..];
        }
        return written;
    }
}
