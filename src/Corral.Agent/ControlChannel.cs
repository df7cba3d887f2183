using System.Net.Sockets;
using System.Text;

namespace Corral.Agent;

/// <summary>The worker's end of the control socketpair: lines out, and end-of-file in when the master dies.</summary>
internal sealed class ControlChannel
{
    private readonly Socket _socket;
    private readonly object _sendGate = new();
    private volatile bool _broken;

    public ControlChannel(int fd)
    {
        _socket = new Socket(new SafeSocketHandle((IntPtr)fd, ownsHandle: true));
    }

    /// <summary>Sends one line; never throws (a dead master is noticed by the reader).</summary>
    public void Send(string line)
    {
        if (_broken)
        {
            return;
        }
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        lock (_sendGate)
        {
            try
            {
                var sent = 0;
                while (sent < bytes.Length)
                {
                    sent += _socket.Send(bytes, sent, bytes.Length - sent, SocketFlags.None);
                }
            }
            catch (SocketException)
            {
                _broken = true;
            }
            catch (ObjectDisposedException)
            {
                _broken = true;
            }
        }
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
