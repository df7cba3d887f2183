using System.Net;
using System.Net.Sockets;
using System.Text;
using Corral.Agent.Logging;
using Corral.Agent.Metrics;

namespace Corral.Tests;

/// <summary>The worker's statsd client: Gunicorn's names and line format, tags, packing into datagrams, a real UDP and unix client.</summary>
public class StatsdTests
{
    [Fact]
    public void Lines_are_Gunicorns_with_the_tags_at_the_end()
    {
        Assert.Equal("app.gunicorn.requests:1|c", StatsdFormat.Line("app.", StatsdMetrics.Requests, "1", "c", null));
        Assert.Equal("gunicorn.workers:4|g", StatsdFormat.Line("", StatsdMetrics.Workers, "4", "g", ""));
        Assert.Equal("app.gunicorn.request.duration:12.5|ms|#env:test,app:shop", StatsdFormat.Line("app.", StatsdMetrics.RequestDuration, "12.5", "ms", "env:test,app:shop"));
        Assert.Equal("12.346", StatsdFormat.Milliseconds(12.3456));
        Assert.Equal("5", StatsdFormat.Milliseconds(5));
        Assert.Equal("0", StatsdFormat.Milliseconds(0.0004));
        Assert.Equal("1500.25", StatsdFormat.Milliseconds(1500.25));
    }

    [Fact]
    public void Prefixes_and_tags_that_would_break_a_line_are_refused()
    {
        Assert.Null(StatsdFormat.CheckPrefix("service.app-1_x"));
        Assert.NotNull(StatsdFormat.CheckPrefix("a:b"));
        Assert.NotNull(StatsdFormat.CheckPrefix("a\nb"));
        Assert.Null(StatsdFormat.CheckTags("env:prod,app:shop,version:1.2"));
        Assert.NotNull(StatsdFormat.CheckTags("env:prod|x"));
        Assert.NotNull(StatsdFormat.CheckTags("env:é"));
    }

    [Fact]
    public void Lines_are_packed_into_datagrams_no_larger_than_the_limit_in_order()
    {
        // 100 lines of 60 bytes: 22 fit in 1400 bytes (22 x 60 + 21 newlines = 1341; 23 would be 1402).
        var lines = Enumerable.Range(0, 100).Select(i => $"app.gunicorn.request.duration:{i:000}.000|ms|#env:test,n:{i:0000000}").ToList();
        Assert.All(lines, l => Assert.Equal(60, l.Length));
        var datagrams = StatsdFormat.Pack(lines, 1400);
        Assert.Equal(5, datagrams.Count);
        Assert.Equal([22 * 61 - 1, 22 * 61 - 1, 22 * 61 - 1, 22 * 61 - 1, 12 * 61 - 1], datagrams.Select(d => d.Length));
        Assert.Equal(lines, datagrams.SelectMany(d => Encoding.UTF8.GetString(d).Split('\n')));

        // Exactly at the limit still fits; one byte over starts a new datagram; a line longer than the limit goes alone.
        Assert.Single(StatsdFormat.Pack(["aaaa", "bbbb"], 9));
        Assert.Equal(2, StatsdFormat.Pack(["aaaa", "bbbbb"], 9).Count);
        var big = StatsdFormat.Pack(["a", new string('x', 20), "b"], 10);
        Assert.Equal(["a", new string('x', 20), "b"], big.Select(d => Encoding.UTF8.GetString(d)));
        Assert.Empty(StatsdFormat.Pack([], 1400));
    }

    [Fact]
    public void Counters_add_up_between_flushes_and_each_request_keeps_its_duration()
    {
        using var client = new StatsdClient("127.0.0.1:9", "app.", "env:test", null, Timeout.InfiniteTimeSpan);
        Assert.Empty(client.TakeLines());
        client.Request(200, TimeSpan.FromMilliseconds(1.5));
        client.Request(200, TimeSpan.FromMilliseconds(2));
        client.Request(404, TimeSpan.FromMilliseconds(3.25));
        client.Increment(StatsdMetrics.LogWarning);
        client.Increment(StatsdMetrics.LogWarning);
        client.Gauge(StatsdMetrics.Workers, 3);
        client.Gauge(StatsdMetrics.Workers, 2);
        var lines = client.TakeLines();
        Assert.Equal(
            [
                "app.gunicorn.workers:2|g|#env:test",
                "app.gunicorn.log.warning:2|c|#env:test",
                "app.gunicorn.requests:3|c|#env:test",
                "app.gunicorn.request.status.200:2|c|#env:test",
                "app.gunicorn.request.status.404:1|c|#env:test",
                "app.gunicorn.request.duration:1.5|ms|#env:test",
                "app.gunicorn.request.duration:2|ms|#env:test",
                "app.gunicorn.request.duration:3.25|ms|#env:test",
            ],
            lines);
        Assert.Empty(client.TakeLines());
    }

    [Fact]
    public void The_error_log_counts_warning_error_and_critical_lines_even_below_the_log_level()
    {
        using var dir = new TempDir();
        using var client = new StatsdClient("127.0.0.1:9", "", null, null, Timeout.InfiniteTimeSpan);
        var log = new AgentLog(Path.Combine(dir.Path, "error.log"), "critical") { Statsd = client };
        log.Debug("d");
        log.Info("i");
        log.Warning("w");
        log.Warning("w");
        log.Error("e");
        log.Critical("c");
        Assert.Equal(["gunicorn.log.warning:2|c", "gunicorn.log.error:1|c", "gunicorn.log.critical:1|c"], client.TakeLines().Order(StringComparer.Ordinal).Reverse());
    }

    [Fact]
    public async Task A_real_udp_server_gets_every_request_in_datagrams_within_the_limit()
    {
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        server.ReceiveBufferSize = 4 << 20;
        server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var target = ((IPEndPoint)server.LocalEndPoint!).ToString();
        // Received while they are sent: a burst of datagrams could overflow the socket's buffer.
        var received = ReceiveAsync(server, l => l.Count(x => x.Contains("|ms", StringComparison.Ordinal)) >= 3000 && l.Any(x => x.Contains("workers", StringComparison.Ordinal)));
        using (var client = new StatsdClient(target, "app.", "env:test", null))
        {
            // From several threads at once, as a worker's requests finish.
            await Parallel.ForAsync(0, 3000, (i, _) =>
            {
                client.Request(i % 10 == 0 ? 404 : 200, TimeSpan.FromMilliseconds(i % 50));
                return ValueTask.CompletedTask;
            });
            client.Gauge(StatsdMetrics.Workers, 2);
        }

        var lines = await received;
        Assert.All(lines.Datagrams, d => Assert.InRange(d, 1, StatsdClient.MaxDatagramBytes));
        Assert.True(lines.Datagrams.Count > 50, $"{lines.Datagrams.Count} datagrams");
        Assert.All(lines.Lines, l => Assert.EndsWith("|#env:test", l));
        Assert.Equal(3000, Sum(lines.Lines, "app.gunicorn.requests", "c"));
        Assert.Equal(2700, Sum(lines.Lines, "app.gunicorn.request.status.200", "c"));
        Assert.Equal(300, Sum(lines.Lines, "app.gunicorn.request.status.404", "c"));
        Assert.Equal(3000, lines.Lines.Count(l => l.StartsWith("app.gunicorn.request.duration:", StringComparison.Ordinal) && l.Contains("|ms|", StringComparison.Ordinal)));
        Assert.Contains("app.gunicorn.workers:2|g|#env:test", lines.Lines);
    }

    [Fact]
    public async Task A_unix_datagram_socket_works_too()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "statsd.sock");
        using var server = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        server.Bind(new UnixDomainSocketEndPoint(path));
        using (var client = new StatsdClient("unix:" + path, "", null, null))
        {
            client.Request(201, TimeSpan.FromMilliseconds(7));
        }
        var lines = await ReceiveAsync(server, l => l.Count >= 3);
        Assert.Equal(["gunicorn.requests:1|c", "gunicorn.request.status.201:1|c", "gunicorn.request.duration:7|ms"], lines.Lines);
    }

    [Fact]
    public void A_send_that_fails_is_logged_once_and_never_reaches_the_caller()
    {
        using var dir = new TempDir();
        var warnings = new List<string>();
        using var client = new StatsdClient("unix:" + Path.Combine(dir.Path, "nobody-listens.sock"), "", null, w => warnings.Add(w), Timeout.InfiniteTimeSpan);
        for (var i = 0; i < 3; i++)
        {
            client.Request(200, TimeSpan.FromMilliseconds(1));
            client.Flush();
        }
        Assert.Equal(3, client.Failed);
        Assert.Equal(0, client.Sent);
        var warning = Assert.Single(warnings);
        Assert.Contains("statsd: cannot send to unix:", warning);
        Assert.Contains("logged once", warning);
    }

    private static long Sum(IEnumerable<string> lines, string name, string type) =>
        lines.Where(l => l.StartsWith(name + ":", StringComparison.Ordinal))
            .Select(l => l[(name.Length + 1)..].Split('|'))
            .Where(p => p[1] == type)
            .Sum(p => long.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture));

    private static async Task<(List<int> Datagrams, List<string> Lines)> ReceiveAsync(Socket server, Func<List<string>, bool> done)
    {
        await Task.Yield();
        var datagrams = new List<int>();
        var lines = new List<string>();
        var buffer = new byte[65536];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!done(lines))
        {
            var n = await server.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            datagrams.Add(n);
            lines.AddRange(Encoding.UTF8.GetString(buffer, 0, n).Split('\n'));
        }
        return (datagrams, lines);
    }
}
