using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Corral.Os;

/// <summary>
/// systemd's notify protocol (Type=notify, sd_notify(3)): one datagram per state change to the unix
/// socket named by NOTIFY_SOCKET ("@name" is the abstract namespace). Without NOTIFY_SOCKET, nothing.
/// </summary>
public sealed class SystemdNotify : IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _target;

    public SystemdNotify(string? notifySocket)
    {
        if (string.IsNullOrEmpty(notifySocket))
        {
            return;
        }
        var path = notifySocket[0] == '@' ? "\0" + notifySocket[1..] : notifySocket;
        _target = new UnixDomainSocketEndPoint(path);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    public bool Enabled => _socket is not null;

    /// <summary>Sends "KEY=VALUE" lines; RELOADING=1 gets the MONOTONIC_USEC systemd 253+ asks for.</summary>
    public void Send(string state)
    {
        if (_socket is null)
        {
            return;
        }
        var text = state;
        if (state.Contains("RELOADING=1", StringComparison.Ordinal))
        {
            var usec = (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000.0 / System.Diagnostics.Stopwatch.Frequency));
            text += "\nMONOTONIC_USEC=" + usec.ToString(CultureInfo.InvariantCulture);
        }
        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(text), _target!);
        }
        catch (SocketException)
        {
            // systemd gone or the socket wrong: the service still runs; nothing to tell.
        }
    }

    public void Dispose() => _socket?.Dispose();
}
