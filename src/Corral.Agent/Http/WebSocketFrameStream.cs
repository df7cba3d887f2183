using System.Buffers.Binary;
using System.Text;

namespace Corral.Agent.Http;

/// <summary>
/// The stream under an app's server-side websocket (what the upgrade gave it), through which Corral
/// can send a close frame of its own when the worker stops. A websocket allows one send at a time,
/// so the app's writes and Corral's close take turns (one lock), and Corral's close goes out only
/// between two of the app's frames: the writes are followed frame by frame (<see cref="WebSocketFrames"/>),
/// which also tells whether the app has sent its own close frame (then Corral sends none). Once
/// Corral's close is out, the app's later writes are dropped: nothing may follow a close frame.
/// Reads pass through, so the app still receives the client's answering close.
/// <para>
/// Two cases: the app keeps the websocket open (it ignores the stopping signal): Corral sends 1001
/// "going away" (<see cref="SendGoingAwayAsync"/>). The app drops it without a close frame while
/// the host stops (it aborts it: a .NET WebSocket aborts when a receive is cancelled, which is what
/// SignalR does on ApplicationStopping, and handlers that pass the stopping token to ReceiveAsync):
/// the stream is kept open until the request ends, and Corral completes the close the app skipped,
/// with 1000 (<see cref="CloseAbandonedAsync"/>), what a clean close by SignalR carries.
/// </para>
/// </summary>
internal sealed class WebSocketFrameStream(Stream inner, Func<bool> stopping) : Stream
{
    /// <summary>The server's close frames (unmasked, FIN).</summary>
    internal static readonly byte[] GoingAwayFrame = CloseFrame(1001, "server going away"), NormalFrame = CloseFrame(1000, "server stopping");

    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly WebSocketFrames _written = new();
    private volatile bool _closeSent;
    private bool _goneAway;
    private bool _goAwayPending;
    private volatile bool _abandoned;

    /// <summary>A close frame has gone out: the app's own, or Corral's.</summary>
    public bool CloseSent => _closeSent;

    /// <summary>
    /// Sends 1001 "going away" unless a close frame has gone out already: now, or right after the
    /// frame the app is half-way through writing. False if none was sent (the app closed, the client
    /// is gone, or <paramref name="ct"/> fired while the app's send held the stream).
    /// </summary>
    public async Task<bool> SendGoingAwayAsync(CancellationToken ct)
    {
        try
        {
            await _send.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        try
        {
            if (_closeSent || _abandoned)
            {
                return false;
            }
            if (!_written.AtBoundary)
            {
                _goAwayPending = true; // the app's next write ends its frame, then the close follows
                return true;
            }
            return await WriteCloseAsync(GoingAwayFrame, ct).ConfigureAwait(false);
        }
        finally
        {
            _send.Release();
        }
    }

    /// <summary>
    /// The request is over. If the host is stopping and no close frame went out (the app aborted the
    /// websocket, or returned without closing it), Corral sends 1000 and waits, within
    /// <paramref name="handshake"/>, for the client's close (or its end of the connection), so the
    /// client sees a clean close rather than a reset. Then the stream is let go. True once the close
    /// handshake is complete (the connection may then end normally, not aborted).
    /// </summary>
    public async Task<bool> CloseAbandonedAsync(TimeSpan handshake)
    {
        try
        {
            if (!stopping() || _closeSent)
            {
                return false;
            }
            using var limit = new CancellationTokenSource(handshake);
            try
            {
                await _send.WaitAsync(limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            try
            {
                if (_closeSent || !_written.AtBoundary || !await WriteCloseAsync(NormalFrame, limit.Token).ConfigureAwait(false))
                {
                    return false;
                }
            }
            finally
            {
                _send.Release();
            }
            return await AwaitClientCloseAsync(limit.Token).ConfigureAwait(false);
        }
        finally
        {
            if (_abandoned)
            {
                await inner.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reads (and drops) what the client still sends, until its close frame, its end of the stream, or <paramref name="ct"/>; true for the first two.</summary>
    private async Task<bool> AwaitClientCloseAsync(CancellationToken ct)
    {
        var read = new WebSocketFrames();
        var buffer = new byte[1024];
        try
        {
            while (!read.CloseSeen)
            {
                var n = await inner.ReadAsync(buffer, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    return true;
                }
                read.Follow(buffer.AsSpan(0, n));
            }
            return true;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            return false; // the client is gone, or too slow: the connection is aborted now
        }
    }

    /// <summary>With the send lock held, at a frame boundary.</summary>
    private async Task<bool> WriteCloseAsync(byte[] frame, CancellationToken ct)
    {
        _goAwayPending = false;
        _closeSent = true;
        _goneAway = true;
        try
        {
            await inner.WriteAsync(frame, ct).ConfigureAwait(false);
            await inner.FlushAsync(ct).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            return false; // the client is gone, or does not read: the connection is aborted next
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _send.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_goneAway)
            {
                return;
            }
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            Follow(buffer.Span);
            if (_goAwayPending && _written.AtBoundary && !_closeSent)
            {
                await WriteCloseAsync(GoingAwayFrame, CancellationToken.None).ConfigureAwait(false);
            }
        }
        finally
        {
            _send.Release();
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _send.Wait();
        try
        {
            if (_goneAway)
            {
                return;
            }
            inner.Write(buffer);
            Follow(buffer);
            if (_goAwayPending && _written.AtBoundary && !_closeSent)
            {
                _goAwayPending = false;
                _closeSent = true;
                _goneAway = true;
                inner.Write(GoingAwayFrame);
            }
        }
        finally
        {
            _send.Release();
        }
    }

    private void Follow(ReadOnlySpan<byte> written)
    {
        _written.Follow(written);
        if (_written.CloseSeen)
        {
            _closeSent = true;
        }
    }

    internal static byte[] CloseFrame(ushort status, string reason)
    {
        var text = Encoding.UTF8.GetBytes(reason);
        var frame = new byte[4 + text.Length]; // a control frame's payload is at most 125 bytes
        frame[0] = 0x88; // FIN, close
        frame[1] = (byte)(2 + text.Length);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), status);
        text.CopyTo(frame, 4);
        return frame;
    }

    public override bool CanRead => inner.CanRead;
    public override bool CanWrite => inner.CanWrite;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => inner.Read(buffer);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

    /// <summary>
    /// The app lets go of the websocket. While the host stops without a close frame sent, the stream
    /// stays open until the request ends (<see cref="CloseAbandonedAsync"/>).
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (stopping() && !_closeSent)
            {
                _abandoned = true;
            }
            else
            {
                inner.Dispose();
            }
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (stopping() && !_closeSent)
        {
            _abandoned = true;
        }
        else
        {
            await inner.DisposeAsync().ConfigureAwait(false);
        }
        GC.SuppressFinalize(this);
    }
}
