using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Corral.Agent.Admission;

/// <summary>
/// sync: a new connection holds its worker's turn while its request head may be on its way, and
/// gives it back when it is not: after <see cref="AdmissionGate.FirstBytesWait"/> with no bytes sent,
/// as soon as its first bytes turn out not to be a whole head (a slow sender), or when it closes. A
/// request that arrives on it takes the turn over (<see cref="AdmissionGate.EnterRequestAsync"/>).
/// The first bytes are seen through <see cref="Watch"/>, a connection middleware inside TLS and
/// PROXY: Kestrel's own first read, nothing read twice. A busy machine may leave bytes unread for a
/// while: bytes waiting in the kernel keep the turn, and a whole head keeps it until its request
/// starts, up to <see cref="AdmissionGate.HeadParseWait"/> in all.
/// </summary>
public sealed class HeadTurn
{
    private const int Waiting = 0, HeadSeen = 1, Released = 2;

    private readonly AdmissionGate _gate;
    private readonly Socket? _socket;
    private readonly long _accepted = Stopwatch.GetTimestamp();
    private readonly Lock _sync = new();
    private Timer? _timer;
    private int _state;

    private HeadTurn(AdmissionGate gate, Socket? socket)
    {
        _gate = gate;
        _socket = socket;
    }

    internal static void Begin(ConnectionContext connection, AdmissionGate gate)
    {
        var turn = new HeadTurn(gate, connection.Features.Get<IConnectionSocketFeature>()?.Socket);
        gate.TakeTurn();
        connection.Features.Set(turn);
        lock (turn._sync)
        {
            turn._timer = new Timer(static t => ((HeadTurn)t!).TimerFired(), turn, AdmissionGate.FirstBytesWait, Timeout.InfiniteTimeSpan);
        }
        connection.ConnectionClosed.Register(static t => ((HeadTurn)t!).Release(), turn);
    }

    /// <summary>Gives the turn back (once).</summary>
    public void Release()
    {
        lock (_sync)
        {
            if (_state == Released)
            {
                return;
            }
            _state = Released;
            _timer?.Dispose();
        }
        _gate.GiveTurnBack();
    }

    private void TimerFired()
    {
        lock (_sync)
        {
            if (_state == Waiting && Stopwatch.GetElapsedTime(_accepted) < AdmissionGate.HeadParseWait && BytesWaiting())
            {
                // The client has sent: the worker has not read it yet (a busy machine).
                _timer?.Change(AdmissionGate.FirstBytesWait, Timeout.InfiniteTimeSpan);
                return;
            }
        }
        Release(); // nothing sent, or a head whose request never started (an idle HTTP/2 connection)
    }

    private bool BytesWaiting()
    {
        try
        {
            return _socket is { } s && s.Available > 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    private void FirstRead(in ReadResult result)
    {
        if (!HoldsWholeHead(result.Buffer))
        {
            Release(); // a slow sender (or a client that left): held aside, the worker may accept
            return;
        }
        lock (_sync)
        {
            if (_state == Waiting)
            {
                _state = HeadSeen;
                var left = AdmissionGate.HeadParseWait - Stopwatch.GetElapsedTime(_accepted);
                _timer?.Change(left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>The connection middleware: the transport as Kestrel's HTTP layer will read it, watched until its first bytes.</summary>
    internal static Func<ConnectionDelegate, ConnectionDelegate> Watch => next => connection =>
    {
        if (connection.Features.Get<HeadTurn>() is { _state: Waiting } turn)
        {
            connection.Transport = new WatchedTransport(connection.Transport, turn);
        }
        return next(connection);
    };

    /// <summary>Whether these bytes hold the end of a request head (an empty line).</summary>
    public static bool HoldsWholeHead(ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        return reader.TryReadTo(out ReadOnlySequence<byte> _, "\r\n\r\n"u8);
    }

    private sealed class WatchedTransport(IDuplexPipe inner, HeadTurn turn) : IDuplexPipe
    {
        public PipeReader Input { get; } = new FirstReadWatcher(inner.Input, turn);
        public PipeWriter Output => inner.Output;
    }

    private sealed class FirstReadWatcher(PipeReader inner, HeadTurn turn) : PipeReader
    {
        private bool _seen;

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            if (_seen)
            {
                return inner.ReadAsync(cancellationToken);
            }
            var read = inner.ReadAsync(cancellationToken);
            if (read.IsCompletedSuccessfully)
            {
                var result = read.Result;
                Observe(result);
                return new ValueTask<ReadResult>(result);
            }
            return ObserveAsync(read);
        }

        private async ValueTask<ReadResult> ObserveAsync(ValueTask<ReadResult> read)
        {
            var result = await read.ConfigureAwait(false);
            Observe(result);
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }
            if (!_seen)
            {
                Observe(result);
            }
            return true;
        }

        private void Observe(in ReadResult result)
        {
            if (result.Buffer.IsEmpty && !result.IsCompleted && !result.IsCanceled)
            {
                return;
            }
            _seen = true;
            turn.FirstRead(result);
        }

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);
        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);
        public override void CancelPendingRead() => inner.CancelPendingRead();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }
}
