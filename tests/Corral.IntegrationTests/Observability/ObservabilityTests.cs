using System.Text.Json;
using Corral.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.IntegrationTests.Observability;

/// <summary>#6's acceptance, with real processes: metrics across recycling, corral ctl, the listen-queue gauge.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ObservabilityTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-obs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task RequestCounterSaysExactly1000After1000RequestsAndThreeRecycles()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:0", "--max-requests", "300", "--metrics-bind", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var metrics = await Observe.MetricsPortAsync(corral);
        await corral.WaitForWorkersAsync(1, Boot);

        // In chunks of 25, 4 at a time; when the worker asks to be recycled, let its successor boot
        // (the old one keeps serving meanwhile, so without the wait it would serve far more than 300).
        var failures = 0;
        for (var sent = 0; sent < 1000; sent += 25)
        {
            await Parallel.ForAsync(0, 25, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (_, _) =>
            {
                var (status, _) = await Http.GetAsync(port, "/");
                if (status != 200)
                {
                    Interlocked.Increment(ref failures);
                }
            });
            var recycles = corral.CountLines("reached --max-requests");
            if (recycles > 0)
            {
                await corral.WaitForLineAsync(@"Worker ready \(pid: \d+\)", Boot, occurrence: recycles + 1);
            }
        }
        Assert.Equal(0, failures);

        // Workers report every second and once more as they exit; recycled ones have reported all theirs.
        var samples = await Observe.ScrapeUntilAsync(metrics,
            s => s.Sum("corral_requests_total") >= 1000 && s.Sum("corral_worker_restarts_total", l => l["reason"] == "max-requests") >= 3,
            TimeSpan.FromSeconds(60), "1000 requests counted and 3 recycles");
        Assert.Equal(1000, samples.Sum("corral_requests_total"));
        Assert.Equal(1000, samples.Sum("corral_requests_total", l => l["method"] == "GET" && l["status_class"] == "2xx"));
        Assert.Equal(1000, samples.Sum("corral_request_duration_seconds_count"));
        Assert.Equal(1000, samples.Sum("corral_request_duration_seconds_bucket", l => l["le"] == "+Inf"));
        Assert.True(samples.Sum("corral_request_duration_seconds_sum") > 0);
        Assert.Equal(0, samples.Sum("corral_worker_restarts_total", l => l["reason"] == "crash"));
        Assert.True(corral.CountLines("reached --max-requests") >= 3, corral.Output);

        // And it stays there: nothing counted twice as the recycled workers' successors report.
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        samples = await Observe.ScrapeAsync(metrics);
        Assert.Equal(1000, samples.Sum("corral_requests_total"));
        Assert.Equal(1, samples.Sum("corral_workers", l => l["state"] == "ready"));
        Assert.True(samples.Sum("corral_worker_boot_seconds_count") >= 4);
        // Each boot's CPU too: every worker that reported ready (the first and its successors) used some.
        Assert.Equal(samples.Sum("corral_worker_boot_seconds_count"), samples.Sum("corral_worker_boot_cpu_seconds_count"));
        Assert.InRange(samples.Sum("corral_worker_boot_cpu_seconds_sum") / samples.Sum("corral_worker_boot_cpu_seconds_count"), 0.01, 30);
        Assert.True(samples.Count(s => s.Name == "corral_worker_rss_bytes" && s.Value > 0) >= 1);

        // PSS next to RSS, per worker: the live worker's PSS is known (read at its first report) and at most its RSS.
        samples = await Observe.ScrapeUntilAsync(metrics, s => s.Any(x => x.Name == "corral_worker_pss_bytes"), TimeSpan.FromSeconds(10), "a PSS gauge");
        Assert.All(samples.Where(s => s.Name == "corral_worker_pss_bytes"), pss =>
        {
            var rss = Assert.Single(samples, s => s.Name == "corral_worker_rss_bytes" && s.Labels["pid"] == pss.Labels["pid"]);
            Assert.InRange(pss.Value, 1024 * 1024, rss.Value);
        });
        output.WriteLine(corral.Output);
    }

    [Fact]
    public async Task CtlStatusShowsThreeWorkersWithLiveNumbersAndAddTwoMakesFive()
    {
        var apps = await TestApps.GetAsync();
        var pidFile = Path.Combine(_dir, "corral.pid");
        using var corral = CorralProcess.Start(["-w", "3", "-b", "127.0.0.1:0", "-p", pidFile, "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(3, Boot);
        var socket = pidFile + ".ctl";
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));
        for (var i = 0; i < 30; i++)
        {
            Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        }

        // Live numbers: the served counts (heartbeats) add up to the 30 requests.
        JsonElement status = default;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            var (exit, json, err) = await Observe.CtlAsync("-p", pidFile, "status", "--json");
            Assert.True(exit == 0, err);
            status = JsonDocument.Parse(json).RootElement;
            if (status.GetProperty("workers").EnumerateArray().Sum(w => w.GetProperty("served").GetInt64()) == 30
                && status.GetProperty("requests_total").GetInt64() == 30
                && status.GetProperty("workers").EnumerateArray().All(w => w.GetProperty("rss_bytes").GetInt64() > 0 && w.GetProperty("pss_bytes").GetInt64() > 0))
            {
                break;
            }
            await Task.Delay(300);
        }
        var workers = status.GetProperty("workers").EnumerateArray().ToList();
        Assert.Equal(3, workers.Count);
        Assert.All(workers, w => Assert.Equal("ready", w.GetProperty("state").GetString()));
        Assert.Equal(30, workers.Sum(w => w.GetProperty("served").GetInt64()));
        Assert.All(workers, w => Assert.True(w.GetProperty("rss_bytes").GetInt64() > 0));
        // PSS: plausible for a .NET worker (over 1 MiB) and at most its RSS (pages it shares count in part).
        Assert.All(workers, w => Assert.InRange(w.GetProperty("pss_bytes").GetInt64(), 1024 * 1024, w.GetProperty("rss_bytes").GetInt64()));
        // What each boot cost in CPU: a .NET worker uses some before it is ready, and the master read it at ready.
        Assert.All(workers, w => Assert.InRange(w.GetProperty("boot_cpu_seconds").GetDouble(), 0.01, 30));
        Assert.Equal(corral.Pid, status.GetProperty("pid").GetInt32());
        Assert.Equal(30, status.GetProperty("requests_total").GetInt64());
        Assert.Equal(ProcessTree.Children(corral.Pid).Order(), workers.Select(w => w.GetProperty("pid").GetInt32()).Order());

        // The text form: one row per worker, with its pid and state.
        var (code, text, _) = await Observe.CtlAsync("--control-socket", socket, "status");
        Assert.Equal(0, code);
        output.WriteLine(text);
        Assert.Contains("listener http://127.0.0.1:", text);
        Assert.Matches(@"(?m)^PID +STATE +AGE +DUE IN +SERVED +INFLIGHT +RSS +PSS +GC HEAP$", text);
        // Every row has RSS, PSS and GC heap in MiB (PSS is not "-": smaps_rollup is readable here).
        Assert.All(workers, w => Assert.Matches($@"(?m)^{w.GetProperty("pid").GetInt32()} +ready .* \d+\.\dM +\d+\.\dM +\d+\.\dM$", text));

        var (addExit, addOut, addErr) = await Observe.CtlAsync("-p", pidFile, "add", "2");
        Assert.True(addExit == 0, addErr);
        Assert.Contains("workers wanted: 5", addOut);
        await corral.WaitForWorkersAsync(5, Boot);
        var (_, five, _) = await Observe.CtlAsync("-p", pidFile, "status", "--json");
        Assert.Equal(5, JsonDocument.Parse(five).RootElement.GetProperty("workers").GetArrayLength());

        // remove 1, then kill one worker: it is replaced.
        Assert.Equal(0, (await Observe.CtlAsync("-p", pidFile, "remove", "1")).Exit);
        await corral.WaitForWorkersAsync(4, Boot);
        var victim = ProcessTree.Children(corral.Pid).First();
        Assert.Equal(0, (await Observe.CtlAsync("-p", pidFile, "kill", victim.ToString(System.Globalization.CultureInfo.InvariantCulture))).Exit);
        var after = await corral.WaitForWorkersAsync(4, Boot);
        Assert.DoesNotContain(victim, after);

        // A bad command and a missing socket: one line, exit 2.
        var bad = await Observe.CtlAsync("-p", pidFile, "explode");
        Assert.Equal(2, bad.Exit);
        Assert.Single(bad.Err.TrimEnd().Split('\n'));
        var gone = await Observe.CtlAsync("--control-socket", Path.Combine(_dir, "nothing.ctl"), "status");
        Assert.Equal(2, gone.Exit);
        Assert.Contains("no control socket", gone.Err);
        Assert.Single(gone.Err.TrimEnd().Split('\n'));
        var unknownPid = await Observe.CtlAsync("-p", pidFile, "kill", "1");
        Assert.Equal(2, unknownPid.Exit);

        corral.Signal(ProcessTree.SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.False(File.Exists(socket), "the control socket was left behind");
    }

    [Fact]
    public async Task ListenQueueGaugeRisesWhenTheOnlySyncWorkerIsBusyAndFallsBack()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-k", "sync", "-w", "1", "-t", "60", "-b", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var metrics = await Observe.MetricsPortAsync(corral);
        await corral.WaitForWorkersAsync(1, Boot);
        var before = await Observe.ScrapeAsync(metrics);
        var queue = Assert.Single(before, s => s.Name == "corral_listen_queue");
        Assert.Equal(0, queue.Value);

        // 5 blocking requests: the sync worker takes one, the others wait in the kernel's accept queue.
        var requests = Enumerable.Range(0, 5).Select(_ => Http.GetAsync(port, "/sleep?ms=3000", TimeSpan.FromSeconds(60))).ToList();
        var busy = await Observe.ScrapeUntilAsync(metrics, s => s.Sum("corral_listen_queue") >= 3, TimeSpan.FromSeconds(10), "the accept queue to hold 3 connections");
        output.WriteLine($"queue while busy: {busy.Sum("corral_listen_queue")}, in flight {busy.Sum("corral_requests_in_flight")}");
        foreach (var r in requests)
        {
            Assert.Equal(200, (await r).Status);
        }
        await Observe.ScrapeUntilAsync(metrics, s => s.Sum("corral_listen_queue") == 0, TimeSpan.FromSeconds(10), "the accept queue to empty");
    }
}
