using System.Globalization;
using System.Net;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests.Deployment;

/// <summary>
/// The production stack of the seed, for real: nginx (deploy/nginx/corral.conf) → corral on a unix
/// socket → SeedApp in Production → redis-server.
/// </summary>
public sealed class NginxTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(60);

    private readonly TempDir _dir = new();
    private readonly List<IDisposable> _processes = [];

    public void Dispose()
    {
        for (var i = _processes.Count - 1; i >= 0; i--)
        {
            _processes[i].Dispose();
        }
        _dir.Dispose();
    }

    private T Own<T>(T process) where T : IDisposable
    {
        _processes.Add(process);
        return process;
    }

    /// <summary>deploy/nginx/corral.conf as committed, with only its paths, port and name replaced.</summary>
    public static string NginxConfig(string socket, int port, string wwwroot)
    {
        var text = File.ReadAllText(Path.Combine(TestApps.RepoRoot, "deploy", "nginx", "corral.conf"));
        foreach (var (from, to) in new[]
        {
            ("server unix:/run/corral/corral.sock ", $"server unix:{socket} "),
            ("    listen 80;", $"    listen 127.0.0.1:{port};"),
            ("    listen [::]:80;", ""),
            ("server_name example.com;", "server_name localhost;"),
            ("root /srv/seedapp/wwwroot;", $"root {wwwroot};"),
        })
        {
            Assert.True(text.Contains(from, StringComparison.Ordinal), $"deploy/nginx/corral.conf no longer has '{from}': update the test with the file");
            text = text.Replace(from, to, StringComparison.Ordinal);
        }
        return text;
    }

    private async Task<(CorralProcess Corral, RedisServer Redis, int Port, string AccessLog)> StartStackAsync()
    {
        var publish = await SeedAppPublish.GetAsync();
        var redis = Own(await RedisServer.StartAsync(_dir.Path));
        var socket = _dir["corral.sock"];
        var accessLog = _dir["corral-access.log"];
        var corral = Own(CorralProcess.Start(
        [
            "-w", "2", "-b", $"unix:{socket}", "--keep-alive", "75", "--log-level", "debug",
            "--access-logfile", accessLog, "--access-logformat", "%(h)s \"%(r)s\" %(s)s",
            "-e", "ASPNETCORE_ENVIRONMENT=Production",
            "-e", "Redis__Host=127.0.0.1", "-e", $"Redis__Port={redis.Port}", "-e", "Redis__VisitsKey=nginx-test:visits",
            Path.Combine(publish, "SeedApp.dll"),
        ]));
        await corral.WaitForWorkersAsync(2, Boot);
        var port = FreePort.Next();
        Own(await Nginx.StartAsync(_dir["nginx"], NginxConfig(socket, port, Path.Combine(publish, "wwwroot")), port));
        return (corral, redis, port, accessLog);
    }

    [Fact]
    public async Task VisitsGoThroughNginxAndCorralToRedis()
    {
        var (_, redis, port, _) = await StartStackAsync();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(20) };

        // Several at once, over nginx's kept-alive upstream connections to both workers.
        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
        {
            using var response = await client.GetAsync("/visits");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("nginx", response.Headers.Server.ToString(), StringComparison.OrdinalIgnoreCase);
            return int.Parse(await response.Content.ReadAsStringAsync(), CultureInfo.InvariantCulture);
        }));
        Assert.Equal(Enumerable.Range(1, 20), answers.Order());
        Assert.Equal("20", await redis.CommandAsync("GET nginx-test:visits"));

        using var health = await client.GetAsync("/healthz");
        Assert.Equal("ok", await health.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task StaticFilesAreServedByNginxWithoutReachingCorral()
    {
        var (_, _, port, accessLog) = await StartStackAsync();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(20) };

        using var file = await client.GetAsync("/static/hello.txt");
        Assert.Equal(HttpStatusCode.OK, file.StatusCode);
        Assert.Equal(File.ReadAllText(Path.Combine(TestApps.RepoRoot, "examples", "SeedApp", "wwwroot", "static", "hello.txt")), await file.Content.ReadAsStringAsync());
        Assert.False(file.Headers.Contains("X-Request-Id"), "the static file came from the app (it sets X-Request-Id)");
        Assert.NotNull(file.Content.Headers.LastModified);

        // A request that does reach corral, so that its access log is known to work, and comes after.
        using var visits = await client.GetAsync("/visits");
        Assert.Equal(HttpStatusCode.OK, visits.StatusCode);
        Assert.True(visits.Headers.Contains("X-Request-Id"));
        var lines = await WaitForAccessLineAsync(accessLog, "GET /visits ");
        Assert.DoesNotContain(lines, l => l.Contains("hello.txt", StringComparison.Ordinal));

        // A path under wwwroot that is not a file goes to the app, and a dot file is never served.
        using var missing = await client.GetAsync("/static/nope.txt");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.True(missing.Headers.Contains("X-Request-Id"), "a missing static file should fall through to the app");
        using var dot = await client.GetAsync("/.env");
        Assert.Equal(HttpStatusCode.Forbidden, dot.StatusCode);
    }

    [Fact]
    public async Task TheAppSeesTheRealClientAddressNotNginxsNorAForgedOne()
    {
        var (_, _, port, accessLog) = await StartStackAsync();
        // The whole 127.0.0.0/8 is this machine: the client connects to nginx from 127.0.0.7, an address
        // that is neither nginx's nor in --forwarded-allow-ips.
        using var client = Clients.From(IPAddress.Parse("127.0.0.7"));

        using var plain = await client.GetAsync($"http://127.0.0.1:{port}/visits");
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);

        // A client's own X-Forwarded-For (and scheme header) is not believed: nginx appends the real
        // address and corral takes the right-most untrusted one.
        using var forged = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}/visits?forged=1");
        forged.Headers.Add("X-Forwarded-For", "203.0.113.66");
        forged.Headers.Add("X-Forwarded-Ssl", "on");
        using var forgedResponse = await client.SendAsync(forged);
        Assert.Equal(HttpStatusCode.OK, forgedResponse.StatusCode);

        var lines = await WaitForAccessLineAsync(accessLog, "forged=1");
        Assert.Contains("127.0.0.7 \"GET /visits HTTP/1.1\" 200", lines);
        Assert.Contains("127.0.0.7 \"GET /visits?forged=1 HTTP/1.1\" 200", lines);
        Assert.DoesNotContain(lines, l => l.Contains("203.0.113.66", StringComparison.Ordinal));
    }

    private static async Task<List<string>> WaitForAccessLineAsync(string path, string text)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var lines = File.Exists(path) ? ReadShared(path) : [];
            if (lines.Any(l => l.Contains(text, StringComparison.Ordinal)))
            {
                return lines;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no access log line with '{text}' in {path} within 10 s:\n{string.Join('\n', lines)}");
            }
            await Task.Delay(100);
        }
    }

    private static List<string> ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return [.. reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }
}
