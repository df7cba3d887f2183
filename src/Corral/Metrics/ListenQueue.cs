using System.Globalization;
using System.Net.Sockets;
using Corral.Listeners;

namespace Corral.Metrics;

/// <summary>
/// The accept queue of each TCP listener, read from the kernel: in /proc/net/tcp and /proc/net/tcp6 a
/// socket in state LISTEN (0A) shows, as rx_queue, the connections that completed the handshake and
/// wait for accept(2) (the kernel's sk_ack_backlog; its limit is not in that table). The row is found by the inode of the
/// listener's socket (/proc/self/fd/N links to "socket:[INODE]"). Unix-socket listeners have no such
/// counter in /proc (/proc/net/unix has no queue column): they are left out.
/// </summary>
public sealed class ListenQueue
{
    private readonly List<(string Name, long Inode)> _listeners = [];

    public ListenQueue(IEnumerable<Listener> listeners)
    {
        foreach (var l in listeners)
        {
            if (l.Socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 && SocketInode(l.Fd) is { } inode)
            {
                _listeners.Add((l.Name, inode));
            }
        }
    }

    public sealed record Depth(string Listener, long Queued);

    /// <summary>One entry per TCP listener; -1 where the kernel's table has no row for it.</summary>
    public IReadOnlyList<Depth> Read()
    {
        if (_listeners.Count == 0)
        {
            return [];
        }
        var rows = new Dictionary<long, long>();
        foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            try
            {
                foreach (var (inode, queued) in ParseListening(File.ReadLines(file)))
                {
                    rows[inode] = queued;
                }
            }
            catch (IOException)
            {
            }
        }
        return [.. _listeners.Select(l => rows.TryGetValue(l.Inode, out var q) ? new Depth(l.Name, q) : new Depth(l.Name, -1))];
    }

    /// <summary>Rows of /proc/net/tcp{,6} in state LISTEN: (inode, rx_queue).</summary>
    public static IEnumerable<(long Inode, long Queued)> ParseListening(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 10 || f[3] != "0A")
            {
                continue;
            }
            var queues = f[4].Split(':');
            if (queues.Length == 2
                && long.TryParse(queues[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var rx)
                && long.TryParse(f[9], NumberStyles.None, CultureInfo.InvariantCulture, out var inode))
            {
                yield return (inode, rx);
            }
        }
    }

    private static long? SocketInode(int fd)
    {
        try
        {
            var target = new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
            if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal) && target.EndsWith(']'))
            {
                return long.Parse(target.AsSpan(8, target.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
        }
        return null;
    }
}
