using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Corral.Agent.Http.Affinity;

/// <summary>
/// The worker's private forwarding socket, AFFINITYDIR/PID.sock: plain HTTP/1.1 from the other
/// workers of the same master only (the folder is the master's, mode 0700). Its connections pass
/// the admission gate by: each was admitted, counted and will be logged by the worker that forwards it.
/// </summary>
internal static class AffinityListener
{
    private static string? s_path;

    public static string SocketPath(string directory, int pid) =>
        Path.Combine(directory, pid.ToString(CultureInfo.InvariantCulture) + ".sock");

    /// <summary>Listens on this worker's socket (a stale one, left by a killed worker of the same pid, goes first).</summary>
    public static void Listen(KestrelServerOptions kestrel, string directory)
    {
        var path = SocketPath(directory, Environment.ProcessId);
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        s_path = path;
        kestrel.ListenUnixSocket(path, listen =>
        {
            listen.Protocols = HttpProtocols.Http1;
            listen.Use(HopConnection.Mark);
        });
    }

    /// <summary>True for the private socket's endpoint, which the admission gate leaves alone.</summary>
    public static bool IsPrivate(EndPoint endpoint) =>
        s_path is not null && endpoint is UnixDomainSocketEndPoint unix && unix.ToString() == s_path;
}
