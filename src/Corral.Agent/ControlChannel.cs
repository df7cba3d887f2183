using System.Net.Sockets;
using System.Text;
using Corral.Agent.Os;

namespace Corral.Agent;

/// <summary>Messages of which only the latest matters: a newer one replaces one not sent yet.</summary>
internal enum Coalesced { Heartbeat, Stats }

/// <summary>
/// The worker's end of the control socketpair: lines out, and end-of-file in when the master dies.
/// <para>
/// Sending never blocks the caller. A master that does not read (stopped by a debugger or SIGSTOP, a
/// VM pause) lets the socket fill; a blocking send would then hold a thread-pool thread per heartbeat
/// until the pool grew without bound. So every send is non-blocking, and what does not fit waits here:
/// </para>
/// <list type="bullet">
/// <item>heartbeats and stats are coalesced: the latest of each waits, an older one not yet sent is
/// dropped (it says less than the newer one, and the master judges a heartbeat by when it was sent);</item>
/// <item>ready, error and recycle are never lost: they wait in order, ahead of heartbeats and stats.</item>
/// </list>
/// What waits goes out at the next send (the heartbeat timer sends every 0.5 s) once the socket has
/// room, and <see cref="Flush"/> waits for it, bounded, on the way out of the process. No thread of
/// its own: nothing needs sending sooner than the next heartbeat, and a worker whose thread pool cannot
/// run its timer is timed out by the master anyway.
/// </summary>
internal sealed class ControlChannel
{
    /// <summary>
    /// The send buffer (the kernel doubles it: 16 KiB, about 20 lines at ~770 bytes of kernel memory
    /// each, some 7 s of heartbeats and stats). A bigger one would only hold older, staler messages for the
    /// master to read through once it runs again.
    /// </summary>
    public const int SendBufferBytes = 8192;

    private readonly Socket _socket;
    private readonly int _fd;
    private readonly object _gate = new();
    private readonly Queue<byte[]> _reliable = new();
    private readonly byte[]?[] _latest = new byte[]?[2];
    private byte[]? _partial;
    private int _partialSent;
    private volatile bool _broken;

    public ControlChannel(int fd)
    {
        _fd = fd;
        _socket = new Socket(new SafeSocketHandle((IntPtr)fd, ownsHandle: true));
        try
        {
            _socket.SendBufferSize = SendBufferBytes;
        }
        catch (SocketException)
        {
        }
    }

    /// <summary>Sends ready, error or recycle: never lost, never blocks (it waits here if the socket is full).</summary>
    public void Send(string line)
    {
        if (_broken)
        {
            return;
        }
        lock (_gate)
        {
            _reliable.Enqueue(Encoding.UTF8.GetBytes(line + "\n"));
            TryFlush();
        }
    }

    /// <summary>Sends a heartbeat or stats line: never blocks; if the socket is full, it replaces the one of its kind waiting.</summary>
    public void Send(Coalesced kind, string line)
    {
        if (_broken)
        {
            return;
        }
        lock (_gate)
        {
            _latest[(int)kind] = Encoding.UTF8.GetBytes(line + "\n");
            TryFlush();
        }
    }

    /// <summary>On the way out: waits up to <paramref name="wait"/> for what is still waiting to be sent.</summary>
    public void Flush(TimeSpan wait)
    {
        var deadline = Environment.TickCount64 + (long)wait.TotalMilliseconds;
        while (!_broken)
        {
            lock (_gate)
            {
                if (TryFlush())
                {
                    return;
                }
            }
            var left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return;
            }
            Native.WaitWritable(_fd, (int)Math.Min(left, 100));
        }
    }

    /// <summary>Sends what it can without blocking, in order; true when nothing is left waiting. Under the gate.</summary>
    private bool TryFlush()
    {
        while (!_broken)
        {
            if (_partial is null)
            {
                if (_reliable.Count > 0)
                {
                    _partial = _reliable.Dequeue();
                }
                else if (_latest[(int)Coalesced.Stats] is { } stats)
                {
                    _partial = stats;
                    _latest[(int)Coalesced.Stats] = null;
                }
                else if (_latest[(int)Coalesced.Heartbeat] is { } heartbeat)
                {
                    _partial = heartbeat;
                    _latest[(int)Coalesced.Heartbeat] = null;
                }
                else
                {
                    return true;
                }
                _partialSent = 0;
            }
            // A line started goes out whole before any other, or the master would read a torn line.
            var sent = Native.SendNonBlocking(_fd, _partial.AsSpan(_partialSent), out var wouldBlock);
            if (sent < 0)
            {
                if (wouldBlock)
                {
                    return false;
                }
                // The master is gone: the reader notices the end of the file and stops the worker.
                _broken = true;
                break;
            }
            _partialSent += sent;
            if (_partialSent == _partial.Length)
            {
                _partial = null;
            }
        }
        _reliable.Clear();
        _latest.AsSpan().Clear();
        _partial = null;
        return true;
    }

    /// <summary>Calls <paramref name="onClosed"/> once the master's end is gone (master exited or was killed).</summary>
    public void WatchForClose(Action onClosed)
    {
        var thread = new Thread(() =>
        {
            var buffer = new byte[256];
            try
            {
                while (_socket.Receive(buffer) > 0)
                {
                    // The master sends nothing today; anything it sends is read and ignored.
                }
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            _broken = true;
            onClosed();
        })
        {
            IsBackground = true,
            Name = "corral-control",
        };
        thread.Start();
    }
}
