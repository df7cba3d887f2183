using System.Net.Sockets;
using System.Text;
using Corral.Agent.Contract;

namespace Corral.Processes;

/// <summary>
/// The master's end of a worker's control channel: one line per message (<see cref="Protocol"/>),
/// read off the loop and posted into it. A worker that writes garbage loses the garbage, never the master.
/// </summary>
public static class ControlReader
{
    /// <summary>
    /// Reads the worker's lines from the master's end of its control socketpair until the worker is
    /// gone, posting each message, then <see cref="MasterEvent.ControlClosed"/>.
    /// </summary>
    public static async Task ReadAsync(int pid, int fd, Action<MasterEvent> post)
    {
        using var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        var buffer = new byte[4096];
        var pending = new StringBuilder();
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    return;
                }
                pending.Append(Encoding.UTF8.GetString(buffer, 0, n));
                int newline;
                while ((newline = IndexOf(pending, '\n')) >= 0)
                {
                    var line = pending.ToString(0, newline);
                    pending.Remove(0, newline + 1);
                    if (Protocol.Parse(line) is { } message)
                    {
                        post(new MasterEvent.Control(pid, message));
                    }
                }
                if (pending.Length > 64 * 1024)
                {
                    pending.Clear(); // a worker writing garbage: drop it rather than grow without bound
                }
            }
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            // After the worker's last line: its final stats are in the loop before this.
            post(new MasterEvent.ControlClosed(pid));
        }
    }

    private static int IndexOf(StringBuilder sb, char c)
    {
        for (var i = 0; i < sb.Length; i++)
        {
            if (sb[i] == c)
            {
                return i;
            }
        }
        return -1;
    }
}
