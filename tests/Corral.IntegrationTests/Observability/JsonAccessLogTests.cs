using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Corral.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.IntegrationTests.Observability;

/// <summary>--access-log-json in a real worker: hostile bytes on a raw socket come out as exact JSON values, one line each.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class JsonAccessLogTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-jsonlog-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>One request on its own connection, bytes as given; returns the response's status line.</summary>
    private static async Task<string> RawRequestAsync(int port, string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(request));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var response = new MemoryStream();
        await stream.CopyToAsync(response, cts.Token); // Connection: close: read to the end
        var text = Encoding.UTF8.GetString(response.ToArray());
        return text[..text.IndexOf("\r\n", StringComparison.Ordinal)];
    }

    [Fact]
    public async Task HostileHeadersAndPathAreExactJsonValuesOneLinePerRequest()
    {
        var apps = await TestApps.GetAsync();
        var log = Path.Combine(_dir, "access.log");
        // --access-logformat is given too: with --access-log-json it is ignored.
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:0", "--log-level", "debug",
            "--access-logfile", log, "--access-log-json", "--access-logformat", "text %(h)s", apps.TestApp]);
        var port = await corral.PortAsync();
        var worker = Assert.Single(await corral.WaitForWorkersAsync(1, Boot));

        const string target = "/env/a%22b%0Ac%5C?q=%22x%22&r=%0A";
        const string agent = "evil \"quoted\" \\back\\slash\\\" \"}, \"x\":\"y\tjürgen 日本";
        const string referer = "http://r.test/\"}\\\", \"http.response.status_code\": 999, \"z\":\"";
        var before = DateTimeOffset.UtcNow;
        var status = await RawRequestAsync(port,
            $"GET {target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {agent}\r\nReferer: {referer}\r\nConnection: close\r\n\r\n");
        Assert.Equal("HTTP/1.1 200 OK", status);
        // An HTTP/1.0 request (the server answers as HTTP/1.1, as it may); its line says 1.0.
        Assert.Equal("HTTP/1.1 200 OK", await RawRequestAsync(port, "GET /bytes?n=7 HTTP/1.0\r\nHost: localhost\r\n\r\n"));
        var after = DateTimeOffset.UtcNow;

        // Lines are written off the request path: wait for both.
        string[] lines = [];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            lines = File.Exists(log) ? File.ReadAllLines(log, Encoding.UTF8) : [];
            if (lines.Length >= 2)
            {
                break;
            }
            await Task.Delay(100);
        }
        foreach (var l in lines)
        {
            output.WriteLine(l);
        }
        Assert.Equal(2, lines.Length); // no line was split by the %0A or the quotes

        using (var doc = JsonDocument.Parse(lines[0]))
        {
            var e = doc.RootElement;
            Assert.Equal(
                ["timestamp", "http.request.method", "url.original", "url.path", "url.query", "url.scheme", "network.protocol.name", "network.protocol.version",
                 "http.response.status_code", "http.response.body.size", "http.server.request.duration", "client.address", "user_agent.original",
                 "http.request.header.referer", "process.pid"],
                e.EnumerateObject().Select(p => p.Name));
            var time = DateTimeOffset.ParseExact(e.GetProperty("timestamp").GetString()!, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
            Assert.InRange(time, before.AddMilliseconds(-1), after.AddMilliseconds(1));
            Assert.Equal("GET", e.GetProperty("http.request.method").GetString());
            Assert.Equal(target, e.GetProperty("url.original").GetString());
            Assert.Equal("/env/a\"b\nc\\", e.GetProperty("url.path").GetString()); // decoded, as Gunicorn's PATH_INFO
            Assert.Equal("q=%22x%22&r=%0A", e.GetProperty("url.query").GetString());
            Assert.Equal("http", e.GetProperty("url.scheme").GetString());
            Assert.Equal("http", e.GetProperty("network.protocol.name").GetString());
            Assert.Equal("1.1", e.GetProperty("network.protocol.version").GetString());
            Assert.Equal(200, e.GetProperty("http.response.status_code").GetInt32());
            Assert.Equal(0, e.GetProperty("http.response.body.size").GetInt64()); // the variable is unset: an empty body
            Assert.InRange(e.GetProperty("http.server.request.duration").GetDouble(), 1e-7, 10);
            Assert.Equal("127.0.0.1", e.GetProperty("client.address").GetString());
            Assert.Equal(agent, e.GetProperty("user_agent.original").GetString());
            Assert.Equal([referer], e.GetProperty("http.request.header.referer").EnumerateArray().Select(v => v.GetString()));
            Assert.Equal(worker, e.GetProperty("process.pid").GetInt32());
        }
        using (var doc = JsonDocument.Parse(lines[1]))
        {
            var e = doc.RootElement;
            Assert.Equal("/bytes?n=7", e.GetProperty("url.original").GetString());
            Assert.Equal("1.0", e.GetProperty("network.protocol.version").GetString());
            Assert.Equal(7, e.GetProperty("http.response.body.size").GetInt64());
            Assert.False(e.TryGetProperty("user_agent.original", out _));
            Assert.False(e.TryGetProperty("http.request.header.referer", out _));
        }
        Assert.DoesNotContain(lines, l => l.StartsWith("text ", StringComparison.Ordinal));
    }
}
