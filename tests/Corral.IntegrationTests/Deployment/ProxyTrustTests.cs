using System.Net;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests.Deployment;

/// <summary>--forwarded-allow-ips and --secure-scheme-headers in a real worker: what the app and the access log see.</summary>
public sealed class ProxyTrustTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static HttpRequestMessage Forwarded(string url, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        foreach (var (name, value) in headers)
        {
            request.Headers.Add(name, value);
        }
        return request;
    }

    [Fact]
    public async Task ATrustedPeerSetsTheClientAddressAndSchemeForTheAppAndTheAccessLog()
    {
        var apps = await TestApps.GetAsync();
        // Default --forwarded-allow-ips: 127.0.0.1, the test's own address.
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "--log-level", "debug",
            "--access-logfile", "-", "--access-logformat", "access %(h)s %(U)s %(s)s", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };

        using var response = await client.SendAsync(Forwarded($"http://127.0.0.1:{port}/client",
            ("X-Forwarded-For", "198.51.100.1, 203.0.113.7"), ("X-Forwarded-Proto", "https")));
        Assert.Equal("203.0.113.7 https HTTP/1.1", await response.Content.ReadAsStringAsync());
        await corral.WaitForLineAsync(@"^access 203\.0\.113\.7 /client 200$", TimeSpan.FromSeconds(5));

        using var contradictory = await client.SendAsync(Forwarded($"http://127.0.0.1:{port}/client",
            ("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")));
        Assert.Equal(HttpStatusCode.BadRequest, contradictory.StatusCode);
        Assert.Contains("Contradictory scheme headers", await contradictory.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AnUntrustedPeerIsIgnoredAndAUnixSocketPeerIsTrusted()
    {
        var apps = await TestApps.GetAsync();
        var socket = _dir["w.sock"];
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-b", $"unix:{socket}", "--log-level", "debug",
            "--forwarded-allow-ips", "10.0.0.0/8", "--secure-scheme-headers", """{"X-Forwarded-Proto": "https"}""",
            "--access-logfile", "-", "--access-logformat", "access %(h)s %(q)s", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);

        // 127.0.0.1 is not in 10.0.0.0/8: its headers change nothing.
        using var tcp = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        using var ignored = await tcp.SendAsync(Forwarded($"http://127.0.0.1:{port}/client?via=tcp",
            ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")));
        Assert.Equal("127.0.0.1 http HTTP/1.1", await ignored.Content.ReadAsStringAsync());
        await corral.WaitForLineAsync(@"^access 127\.0\.0\.1 via=tcp$", TimeSpan.FromSeconds(5));

        // A unix-socket peer is a local proxy: believed, as with Gunicorn.
        using var unix = Clients.OverUnixSocket(socket);
        using var believed = await unix.SendAsync(Forwarded("http://localhost/client?via=unix",
            ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")));
        Assert.Equal("203.0.113.7 https HTTP/1.1", await believed.Content.ReadAsStringAsync());
        await corral.WaitForLineAsync(@"^access 203\.0\.113\.7 via=unix$", TimeSpan.FromSeconds(5));

        // Only the configured scheme header counts: X-Forwarded-Ssl is not one of them here.
        using var other = await unix.SendAsync(Forwarded("http://localhost/client", ("X-Forwarded-Ssl", "on")));
        Assert.EndsWith(" http HTTP/1.1", await other.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ABadAllowListStopsCorralWithOneLineAndExit2()
    {
        using var corral = CorralProcess.Start(["--forwarded-allow-ips", "10.0.0.0/8,nonsense", "app.dll"]);
        Assert.Equal(2, await corral.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        var line = Assert.Single(corral.Lines, l => l.Length > 0);
        Assert.Contains("--forwarded-allow-ips", line);
        Assert.Contains("nonsense", line);
    }
}
