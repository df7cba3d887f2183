using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Corral.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.IntegrationTests.Observability;

/// <summary>--statsd-host with real processes and a real statsd socket bound by the test: Gunicorn's metric names.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class StatsdTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-statsd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task FiftyRequestsAreFiftyGunicornRequestsWithStatusesDurationsTagsAndTheWorkerGauge()
    {
        var apps = await TestApps.GetAsync();
        using var statsd = StatsdServer.Udp();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug",
            "--statsd-host", statsd.Address, "--statsd-prefix", "app", "--dogstatsd-tags", "env:test", apps.TestApp]);
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);

        var statuses = new ConcurrentBag<int>();
        await Parallel.ForAsync(0, 50, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, _) =>
            statuses.Add((await Http.GetAsync(port, i % 5 == 0 ? "/no-such-page" : "/")).Status));
        Assert.Equal(40, statuses.Count(s => s == 200));
        Assert.Equal(10, statuses.Count(s => s == 404));

        await statsd.WaitForAsync(l => Sum(l, "app.gunicorn.requests", "c") >= 50 && l.Contains("app.gunicorn.workers:2|g|#env:test"), TimeSpan.FromSeconds(15), "50 requests and the worker gauge");
        // Workers send every 150 ms: anything counted twice or late would show by now.
        await Task.Delay(TimeSpan.FromSeconds(1));
        var lines = statsd.Lines;
        Assert.Equal(50, Sum(lines, "app.gunicorn.requests", "c"));
        Assert.Equal(40, Sum(lines, "app.gunicorn.request.status.200", "c"));
        Assert.Equal(10, Sum(lines, "app.gunicorn.request.status.404", "c"));
        Assert.Equal(0, lines.Count(l => l.StartsWith("app.gunicorn.request.status.", StringComparison.Ordinal) && !l.StartsWith("app.gunicorn.request.status.200:", StringComparison.Ordinal) && !l.StartsWith("app.gunicorn.request.status.404:", StringComparison.Ordinal)));
        var durations = lines.Where(l => l.StartsWith("app.gunicorn.request.duration:", StringComparison.Ordinal)).ToList();
        Assert.Equal(50, durations.Count);
        Assert.All(durations, d => Assert.Matches(@"^app\.gunicorn\.request\.duration:\d+(\.\d{1,3})?\|ms\|#env:test$", d));
        Assert.All(lines, l => Assert.StartsWith("app.gunicorn.", l));
        Assert.All(lines, l => Assert.EndsWith("|#env:test", l));
        Assert.All(statsd.DatagramSizes, n => Assert.InRange(n, 1, 1400));
        Assert.Equal(0, Sum(lines, "app.gunicorn.log.error", "c"));

        // A worker killed with SIGKILL: the master's error line counts as gunicorn.log.error.
        ProcessTree.Kill(workers.First(), ProcessTree.SIGKILL);
        await corral.WaitForLineAsync("was sent SIGKILL", TimeSpan.FromSeconds(10));
        await statsd.WaitForAsync(l => Sum(l, "app.gunicorn.log.error", "c") >= 1, TimeSpan.FromSeconds(10), "the master's error line counted");

        // At the stop, the master's last gauge: no workers.
        corral.Signal(ProcessTree.SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        await statsd.WaitForAsync(l => l.Contains("app.gunicorn.workers:0|g|#env:test"), TimeSpan.FromSeconds(5), "the gauge at 0 after the stop");
        Assert.Equal(1, Sum(statsd.Lines, "app.gunicorn.log.error", "c"));
        Assert.Equal(50, Sum(statsd.Lines, "app.gunicorn.requests", "c"));
        output.WriteLine(corral.Output);
    }

    [Fact]
    public async Task AUnixDatagramSocketGetsTheMetricsAndTheMastersWarningCount()
    {
        var apps = await TestApps.GetAsync();
        using var statsd = StatsdServer.Unix(Path.Combine(_dir, "statsd.sock"));
        // -k sync with --threads: the master warns that --threads is ignored, one warning line.
        using var corral = CorralProcess.Start(["-w", "1", "-k", "sync", "--threads", "2", "-b", "127.0.0.1:0", "--log-level", "debug",
            "--statsd-host", statsd.Address, apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        }
        await statsd.WaitForAsync(l => Sum(l, "gunicorn.requests", "c") >= 5 && l.Contains("gunicorn.workers:1|g"), TimeSpan.FromSeconds(15), "5 requests");
        await Task.Delay(TimeSpan.FromSeconds(0.5));
        Assert.Equal(5, Sum(statsd.Lines, "gunicorn.requests", "c"));
        Assert.Equal(5, Sum(statsd.Lines, "gunicorn.request.status.200", "c"));
        Assert.Equal(1, Sum(statsd.Lines, "gunicorn.log.warning", "c"));
        Assert.Equal(1, corral.CountLines(@"\[WARNING\] --threads is ignored"));
    }

    [Fact]
    public async Task AReloadThatChangesTheStatsdSettingsMovesEveryMetricToTheNewTarget()
    {
        var apps = await TestApps.GetAsync();
        using var first = StatsdServer.Udp();
        using var second = StatsdServer.Udp();
        var config = Path.Combine(_dir, "corral.json");
        string Config(StatsdServer s, string prefix) =>
            $$"""{ "workers": 1, "bind": ["127.0.0.1:0"], "loglevel": "debug", "statsd_host": "{{s.Address}}", "statsd_prefix": "{{prefix}}" }""";
        File.WriteAllText(config, Config(first, "one"));
        using var corral = CorralProcess.Start(["-c", config, apps.TestApp]);
        var port = await corral.PortAsync();
        var old = await corral.WaitForWorkersAsync(1, Boot);
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        await first.WaitForAsync(l => Sum(l, "one.gunicorn.requests", "c") == 1 && l.Contains("one.gunicorn.workers:1|g"), TimeSpan.FromSeconds(15), "the first target's request and gauge");

        File.WriteAllText(config, Config(second, "two"));
        corral.Signal(ProcessTree.SIGHUP);
        await corral.WaitForLineAsync("Statsd at: .*" + System.Text.RegularExpressions.Regex.Escape(second.Address), TimeSpan.FromSeconds(10));
        await corral.WaitForWorkersAsync(1, Boot, gone: old);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        }
        // The master's gauge and the new worker's requests go to the new target, with its prefix.
        await second.WaitForAsync(l => Sum(l, "two.gunicorn.requests", "c") == 3 && l.Contains("two.gunicorn.workers:1|g"), TimeSpan.FromSeconds(15), "the new target's requests and gauge");
        await Task.Delay(TimeSpan.FromSeconds(0.5));
        Assert.Equal(1, Sum(first.Lines, "one.gunicorn.requests", "c"));
        Assert.All(second.Lines, l => Assert.StartsWith("two.gunicorn.", l));
        Assert.Equal(3, Sum(second.Lines, "two.gunicorn.requests", "c"));
    }

    [Theory]
    [InlineData("udp")]
    [InlineData("unix")]
    public async Task NothingListeningChangesNothingForTheRequests(string kind)
    {
        var apps = await TestApps.GetAsync();
        string address;
        if (kind == "udp")
        {
            // A port that was just free: nothing listens there.
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            address = probe.LocalEndPoint!.ToString()!;
        }
        else
        {
            address = "unix:" + Path.Combine(_dir, "nobody.sock");
        }
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", "--statsd-host", address, apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);

        var watch = Stopwatch.StartNew();
        var statuses = new ConcurrentBag<int>();
        await Parallel.ForAsync(0, 200, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, _) =>
            statuses.Add((await Http.GetAsync(port, "/")).Status));
        watch.Stop();
        Assert.Equal(200, statuses.Count(s => s == 200));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"200 requests took {watch.Elapsed}");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(corral.HasExited, corral.Output);

        // A unix socket nobody listens on refuses every send: one warning per process (2 workers, the master), no more.
        var warnings = corral.CountLines("statsd: cannot send to");
        if (kind == "unix")
        {
            Assert.InRange(warnings, 1, 3);
            Assert.Equal(warnings, corral.Lines.Where(l => l.Contains("statsd: cannot send to", StringComparison.Ordinal)).Select(l => l.Split(']')[1]).Distinct().Count());
        }
        else
        {
            // UDP has no one to refuse an unconnected send: nothing to log.
            Assert.Equal(0, warnings);
        }
        output.WriteLine(corral.Output);
    }

    private static long Sum(IEnumerable<string> lines, string name, string type) =>
        lines.Where(l => l.StartsWith(name + ":", StringComparison.Ordinal))
            .Select(l => l[(name.Length + 1)..].Split('|'))
            .Where(p => p[1] == type)
            .Sum(p => long.Parse(p[0], CultureInfo.InvariantCulture));

    /// <summary>A statsd server as far as the test needs one: a bound datagram socket that keeps every line it gets.</summary>
    private sealed class StatsdServer : IDisposable
    {
        private readonly Socket _socket;
        private readonly ConcurrentQueue<string> _lines = new();
        private readonly ConcurrentQueue<int> _sizes = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _receiving;

        private StatsdServer(Socket socket, string address)
        {
            _socket = socket;
            Address = address;
            _receiving = Task.Run(ReceiveAsync);
        }

        public string Address { get; }
        public IReadOnlyList<string> Lines => [.. _lines];
        public IReadOnlyList<int> DatagramSizes => [.. _sizes];

        public static StatsdServer Udp()
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            return new StatsdServer(socket, socket.LocalEndPoint!.ToString()!);
        }

        public static StatsdServer Unix(string path)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.Bind(new UnixDomainSocketEndPoint(path));
            return new StatsdServer(socket, "unix:" + path);
        }

        public async Task WaitForAsync(Func<IReadOnlyList<string>, bool> condition, TimeSpan timeout, string what)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!condition(Lines))
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"within {timeout.TotalSeconds} s: {what}. Received:\n{string.Join('\n', Lines)}");
                }
                await Task.Delay(50);
            }
        }

        private async Task ReceiveAsync()
        {
            var buffer = new byte[65536];
            try
            {
                while (true)
                {
                    var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                    _sizes.Enqueue(n);
                    foreach (var line in Encoding.UTF8.GetString(buffer, 0, n).Split('\n'))
                    {
                        _lines.Enqueue(line);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _receiving.Wait(TimeSpan.FromSeconds(5));
            _socket.Dispose();
        }
    }
}
