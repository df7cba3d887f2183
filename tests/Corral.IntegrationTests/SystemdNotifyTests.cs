using System.Net.Sockets;
using System.Text;
using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>Type=notify: the notify protocol against a real datagram socket, as systemd listens.</summary>
public sealed class SystemdNotifyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-notify-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task ReadyReloadingAndStoppingReachTheNotifySocket()
    {
        var apps = await TestApps.GetAsync();
        var path = Path.Combine(_dir, "notify");
        using var systemd = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        systemd.Bind(new UnixDomainSocketEndPoint(path));

        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = path });
        var ready = await ReceiveAsync(systemd);
        Assert.Contains("READY=1", ready);
        Assert.Contains($"MAINPID={corral.Pid}", ready);
        // READY=1 comes once every worker is ready, not before.
        Assert.Equal(2, corral.CountLines(@"Worker ready \(pid"));
        // The workers do not see the notify socket: only the master speaks to systemd.
        var port = await corral.PortAsync();
        Assert.Equal((200, ""), await Http.GetAsync(port, "/env/NOTIFY_SOCKET"));

        corral.Signal(SIGHUP);
        var reloading = await ReceiveAsync(systemd);
        Assert.Contains("RELOADING=1", reloading);
        Assert.Matches(@"MONOTONIC_USEC=\d+", reloading);
        Assert.Contains("READY=1", await ReceiveAsync(systemd));
        Assert.Equal(4, corral.CountLines(@"Worker ready \(pid"));

        corral.Signal(SIGTERM);
        Assert.Contains("STOPPING=1", await ReceiveAsync(systemd));
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    private static async Task<string> ReceiveAsync(Socket socket)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }
}
