using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests;

/// <summary>What a client may make a worker hold: header bytes, and the kernel's queue of connections.</summary>
public sealed class ClientLimitsTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// 150 connections each send 700 KB of one header field and never end it. Under the old budget
    /// (fields x field size, about 800 KB a connection) the worker held all of it: about 100 MB more
    /// RSS. With --limit-request-headers-size (64 KiB by default) each is answered 431 and closed once
    /// it has sent that much.
    /// </summary>
    [Fact]
    public async Task HugeUnfinishedHeadersCostTheWorkerLittleMemory()
    {
        const int Connections = 150;
        const int FieldBytes = 700 * 1024;
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        }
        var before = RssKb(worker);

        var head = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
        var chunk = Encoding.ASCII.GetBytes(new string('a', 64 * 1024));
        var sockets = new List<Socket>();
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await Task.WhenAll(Enumerable.Range(0, Connections).Select(async _ =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                lock (sockets)
                {
                    sockets.Add(socket);
                }
                await socket.ConnectAsync(IPAddress.Loopback, port, deadline.Token);
                try
                {
                    await socket.SendAsync(head, deadline.Token);
                    for (var sent = 0; sent < FieldBytes; sent += chunk.Length)
                    {
                        await socket.SendAsync(chunk, deadline.Token);
                    }
                }
                catch (SocketException)
                {
                    // the worker answered and closed the connection: what should happen
                }
            }));
            // Every byte sent is in the worker or gone: give it a moment to read what the kernel holds.
            var after = 0L;
            for (var i = 0; i < 10; i++)
            {
                await Task.Delay(200);
                after = Math.Max(after, RssKb(worker));
            }
            var grownMb = (after - before) / 1024.0;
            Assert.True(grownMb < 64, $"the worker's RSS grew {grownMb:0} MB ({before / 1024} MB before, {after / 1024} MB after)");
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
    }

    /// <summary>
    /// A request whose one field is larger than --limit-request-field_size is answered 431 and its
    /// connection closed: a request pipelined behind it is not served (Kestrel's own 431s do the same).
    /// </summary>
    [Fact]
    public async Task ARequestPipelinedAfterAnOversizedFieldIsNotServed()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port);
        var requests = $"GET /pid HTTP/1.1\r\nHost: x\r\nX-Big: {new string('b', 9000)}\r\n\r\nGET /pid HTTP/1.1\r\nHost: x\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(requests));
        var (received, closed) = await ReadToEndAsync(socket, TimeSpan.FromSeconds(5));

        Assert.StartsWith("HTTP/1.1 431 ", received);
        Assert.Equal(1, CountOf(received, "HTTP/1.1 "));
        Assert.True(closed, "the connection stayed open after the 431:\n" + received);
    }

    /// <summary>--backlog is the queue length the kernel uses (ss's Send-Q of a listening socket), TCP and unix.</summary>
    [Fact]
    public async Task TheKernelQueuesAsManyConnectionsAsBacklogSays()
    {
        var apps = await TestApps.GetAsync();
        var sock = Path.Combine(_dir, "b.sock");
        using var corral = CorralProcess.Start(["-w", "2", "--backlog", "37", "-b", "127.0.0.1:0", "-b", "unix:" + sock, "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);

        var tcp = await SsAsync("-ltnH");
        var tcpRow = Assert.Single(tcp, r => r.Length >= 4 && r[3].EndsWith($":{port}", StringComparison.Ordinal));
        Assert.Equal("37", tcpRow[2]);
        var unix = await SsAsync("-lxH");
        var unixRow = Assert.Single(unix, r => r.Length >= 5 && r[4] == sock);
        Assert.Equal("37", unixRow[3]);
    }

    private static async Task<List<string[]>> SsAsync(string args)
    {
        var psi = new ProcessStartInfo("ss", args) { RedirectStandardOutput = true };
        using var ss = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var output = await ss.StandardOutput.ReadToEndAsync(cts.Token);
        await ss.WaitForExitAsync(cts.Token);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))];
    }

    private static long RssKb(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").Single(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    private static async Task<(string Text, bool Closed)> ReadToEndAsync(Socket socket, TimeSpan timeout)
    {
        var text = new StringBuilder();
        var buffer = new byte[8192];
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    return (text.ToString(), true);
                }
                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
        }
        catch (OperationCanceledException)
        {
            return (text.ToString(), false);
        }
        catch (SocketException)
        {
            return (text.ToString(), true);
        }
    }

    private static int CountOf(string text, string needle)
    {
        var count = 0;
        for (var i = text.IndexOf(needle, StringComparison.Ordinal); i >= 0; i = text.IndexOf(needle, i + 1, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }
}
