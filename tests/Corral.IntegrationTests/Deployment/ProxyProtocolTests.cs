using System.Net;
using System.Net.Sockets;
using System.Text;
using Corral.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.IntegrationTests.Deployment;

/// <summary>--proxy-protocol in a real worker: raw PROXY v1 and v2 headers over a socket.</summary>
public sealed class ProxyProtocolTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(60);

    /// <summary>Connects from <paramref name="source"/>, sends <paramref name="bytes"/>, and reads until the server closes.</summary>
    private static async Task<string> RawAsync(IPAddress source, int port, byte[] bytes)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(source, 0));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
        await socket.SendAsync(bytes, SocketFlags.None, cts.Token);
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token)) > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (SocketException)
        {
            // A reset is a close too.
        }
        return Encoding.ASCII.GetString(received.ToArray());
    }

    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    private static byte[] V2(IPAddress source, int sourcePort, IPAddress destination, int destinationPort)
    {
        var inet4 = source.AddressFamily == AddressFamily.InterNetwork;
        var header = new List<byte> { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, (byte)(inet4 ? 0x11 : 0x21) };
        var length = inet4 ? 12 : 36;
        header.Add((byte)(length >> 8));
        header.Add((byte)length);
        header.AddRange(source.GetAddressBytes());
        header.AddRange(destination.GetAddressBytes());
        header.AddRange([(byte)(sourcePort >> 8), (byte)sourcePort, (byte)(destinationPort >> 8), (byte)destinationPort]);
        return [.. header];
    }

    private static string Get(string path, bool close = true) =>
        $"GET {path} HTTP/1.1\r\nHost: localhost\r\n{(close ? "Connection: close\r\n" : "")}\r\n";

    [Fact]
    public async Task HeadersFromATrustedPeerSetTheClientAndOthersAreNotBelieved()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "--log-level", "debug", "--proxy-protocol",
            "--forwarded-allow-ips", "127.0.0.1",
            "--access-logfile", "-", "--access-logformat", "access %(h)s %(q)s %(s)s", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        var trusted = IPAddress.Loopback;
        var stranger = IPAddress.Parse("127.0.0.7");

        // v1 from the trusted proxy: two requests on the connection, both from the client it names. A
        // client's own X-Forwarded-For is not believed: the client is not a trusted proxy.
        var v1 = await RawAsync(trusted, port, Ascii($"PROXY TCP4 203.0.113.7 127.0.0.1 56324 {port}\r\n"
            + Get("/client?v=1a", close: false)
            + $"GET /client?v=1b HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 198.51.100.1\r\nConnection: close\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200", v1, StringComparison.Ordinal);
        Assert.Equal(2, CountOf(v1, "203.0.113.7 http HTTP/1.1"));
        await corral.WaitForLineAsync(@"^access 203\.0\.113\.7 v=1a 200$", TimeSpan.FromSeconds(10));
        await corral.WaitForLineAsync(@"^access 203\.0\.113\.7 v=1b 200$", TimeSpan.FromSeconds(10));

        // v2 (binary), an IPv6 client.
        var v2 = await RawAsync(trusted, port, [.. V2(IPAddress.Parse("2001:db8::7"), 443, IPAddress.Parse("2001:db8::1"), 8443), .. Ascii(Get("/client?v=2"))]);
        Assert.Contains("2001:db8::7 http HTTP/1.1", v2, StringComparison.Ordinal);
        await corral.WaitForLineAsync(@"^access 2001:db8::7 v=2 200$", TimeSpan.FromSeconds(10));

        // v1 UNKNOWN: the proxy's own address stands.
        var unknown = await RawAsync(trusted, port, Ascii("PROXY UNKNOWN\r\n" + Get("/client?v=unknown")));
        Assert.Contains("127.0.0.1 http HTTP/1.1", unknown, StringComparison.Ordinal);

        // The trusted peer without a header: closed, unanswered, with a log line.
        Assert.Equal("", await RawAsync(trusted, port, Ascii(Get("/client?v=none"))));
        await corral.WaitForLineAsync(@"\[WARNING\] Closing the connection from 127\.0\.0\.1:\d+: --proxy-protocol is on .* does not start with a PROXY protocol header", TimeSpan.FromSeconds(10));

        // A malformed header from the trusted peer: closed too.
        Assert.Equal("", await RawAsync(trusted, port, Ascii("PROXY TCP4 203.0.113.7 127.0.0.1 99999 80\r\n" + Get("/client"))));
        await corral.WaitForLineAsync(@"Closing the connection from 127\.0\.0\.1:\d+: invalid PROXY protocol header: PROXY v1 ports", TimeSpan.FromSeconds(10));

        // Another peer's header is not believed: closed with a log line, v1 and v2 alike.
        Assert.Equal("", await RawAsync(stranger, port, Ascii($"PROXY TCP4 203.0.113.66 127.0.0.1 1 {port}\r\n" + Get("/client?v=forged"))));
        Assert.Equal("", await RawAsync(stranger, port, [.. V2(IPAddress.Parse("203.0.113.66"), 1, IPAddress.Loopback, port), .. Ascii(Get("/client?v=forged2"))]));
        await corral.WaitForLineAsync(@"Closing the connection from 127\.0\.0\.7:\d+: a PROXY protocol header from a peer not in --forwarded-allow-ips is not believed", TimeSpan.FromSeconds(10), occurrence: 2);

        // ... while its plain HTTP is served as usual, as itself.
        var plain = await RawAsync(stranger, port, Ascii(Get("/client?v=plain")));
        Assert.Contains("127.0.0.7 http HTTP/1.1", plain, StringComparison.Ordinal);
        await corral.WaitForLineAsync(@"^access 127\.0\.0\.7 v=plain 200$", TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(corral.Lines, l => l.Contains("203.0.113.66", StringComparison.Ordinal) || l.Contains("forged", StringComparison.Ordinal));
    }

    /// <summary>nginx's stream module (Debian: libnginx-mod-stream), as a TCP proxy with `proxy_protocol on`.</summary>
    private const string StreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so";

    [Fact]
    public async Task NginxStreamWithProxyProtocolOnPassesTheClientAddress()
    {
        if (!File.Exists(StreamModule))
        {
            // xunit 2 has no dynamic skip: the test returns, and says why.
            output.WriteLine($"SKIPPED: nginx's stream module is not installed ({StreamModule}): apt-get install -y libnginx-mod-stream (.ci/run does)");
            return;
        }
        var apps = await TestApps.GetAsync();
        using var dir = new TempDir();
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "--log-level", "debug", "--proxy-protocol",
            "--access-logfile", "-", "--access-logformat", "access %(h)s %(q)s %(s)s", apps.TestApp]);
        var corralPort = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        var port = FreePort.Next();
        // nginx passes TCP through (TLS would pass untouched too) and says who the client is in a PROXY
        // v1 line: corral's default --forwarded-allow-ips (127.0.0.1) trusts it.
        using var nginx = await Nginx.StartAsync(dir["nginx"], "", port, $$"""
            load_module {{StreamModule}};
            stream {
                server {
                    listen 127.0.0.1:{{port}};
                    proxy_pass 127.0.0.1:{{corralPort}};
                    proxy_protocol on;
                }
            }
            """);

        // The client connects to nginx from 127.0.0.7; corral's peer is nginx at 127.0.0.1.
        using var client = Clients.From(IPAddress.Parse("127.0.0.7"));
        using var response = await client.GetAsync($"http://127.0.0.1:{port}/client?via=nginx");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("127.0.0.7 http HTTP/1.1", await response.Content.ReadAsStringAsync());
        await corral.WaitForLineAsync(@"^access 127\.0\.0\.7 via=nginx 200$", TimeSpan.FromSeconds(10));
    }

    private static int CountOf(string text, string part)
    {
        var count = 0;
        for (var i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }
}
