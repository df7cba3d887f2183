using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;
using Corral.IntegrationTests.Observability;

namespace Corral.IntegrationTests;

/// <summary>
/// -w MIN:MAX with a real corral, real sync workers and a real client: idle it stays at MIN, 40 blocking
/// requests at once bring it to MAX, and once the load ends it comes back to MIN, with no failed request.
/// </summary>
public sealed partial class ScalingTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long 40 concurrent blocking requests may take to bring -w 1:4 to 4 ready workers with
    /// --scale-up-after 0.5 --scale-cooldown 1: three steps, each waiting for the previous worker's boot
    /// (no step while one boots), so about 3 x (boot + 0.5 s): ~5 s where a boot takes 1 s, 30 s seen
    /// on the shared 2-core host at load average 70 (boots of 7-12 s).
    /// </summary>
    private static readonly TimeSpan UpWithin = TimeSpan.FromSeconds(45);

    /// <summary>Back to 1 with --scale-down-after 3 --scale-cooldown 1: ~3 s + 2 x 1 s once the queue is empty.</summary>
    private static readonly TimeSpan DownWithin = TimeSpan.FromSeconds(20);

    private readonly string _dir = Directory.CreateTempSubdirectory("corral-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task SyncWorkersFollowTheLoadFromMinToMaxAndBackWithoutAFailedRequest()
    {
        var apps = await TestApps.GetAsync();
        var socket = Path.Combine(_dir, "corral.ctl");
        using var corral = CorralProcess.Start(["-k", "sync", "-w", "1:4", "-b", "127.0.0.1:0", "--scale-up-after", "0.5", "--scale-cooldown", "1",
            "--scale-down-after", "3", "--control-socket", socket, "--metrics-bind", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var metricsPort = await Observe.MetricsPortAsync(corral);
        await corral.WaitForWorkersAsync(1, Boot);

        // Idle: it stays at MIN. (No request: on a loaded host a fresh worker's first request can
        // take longer than --scale-up-after 0.5 s, which with one sync worker is every slot busy.)
        var failures = new List<string>();
        await Task.Delay(TimeSpan.FromSeconds(4));
        Assert.True(ProcessTree.Children(corral.Pid).Count == 1, corral.Output);
        Assert.True(corral.CountLines("Scaling (up|down)") == 0, corral.Output);

        // 40 blocking requests at once: up to MAX, one step at a time.
        var clock = Stopwatch.StartNew();
        using (var stop = new CancellationTokenSource())
        {
            var load = Enumerable.Range(0, 40).Select(_ => LoopAsync(port, "/sleep?ms=300", failures, stop.Token)).ToList();
            await corral.WaitForWorkersAsync(4, UpWithin + TimeSpan.FromSeconds(15)); // the bound is asserted below, with the output
            var upAfter = clock.Elapsed;
            await Task.Delay(TimeSpan.FromSeconds(3)); // at MAX under load: nothing more starts
            Assert.True(ProcessTree.Children(corral.Pid).Count == 4, corral.Output);
            await stop.CancelAsync();
            await Task.WhenAll(load);
            Assert.True(upAfter < UpWithin, $"4 workers after {upAfter.TotalSeconds:0.0} s:\n{corral.Output}");
        }
        var ups = corral.Lines.Where(l => ScaleUpLine().IsMatch(l)).ToList();
        Assert.True(ups.Count == 3, corral.Output);
        Assert.Contains("Scaling up to 2 workers: ", ups[0]);
        Assert.Contains("Scaling up to 4 workers: ", ups[2]);

        var samples = await Observe.ScrapeAsync(metricsPort);
        Assert.Equal(4, samples.Sum("corral_workers_desired"));
        Assert.Equal((1, 4), (samples.Sum("corral_workers_min"), samples.Sum("corral_workers_max")));
        Assert.Equal(3, samples.Sum("corral_scale_events_total", l => l["direction"] == "up"));

        // The load ends, but for a request every 50 ms: back to MIN, the retired workers drain (TERM)
        // while requests keep coming, and none fails.
        using (var stop = new CancellationTokenSource())
        {
            var trickle = PacedAsync(port, failures, stop.Token);
            await corral.WaitForWorkersAsync(1, DownWithin);
            await stop.CancelAsync();
            await trickle;
        }
        Assert.True(corral.CountLines(@"Scaling down to \d workers?: at most \d of \d slots busy and nothing queued for 3 s") == 3, corral.Output);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.DoesNotContain(corral.Lines, l => l.Contains("[ERROR]", StringComparison.Ordinal) || l.Contains("[CRITICAL]", StringComparison.Ordinal));

        var (exit, text, err) = await Observe.CtlAsync("--control-socket", socket, "status");
        Assert.True(exit == 0, err);
        Assert.Contains("1 ready / 1 wanted (-w 1:4, scaled up 3 / down 3 times)", text);
        Assert.Matches(@"last scale event: Scaling down to 1 worker: ", text);
        Assert.Equal(3, Regex.Matches(text, @"\n\d+ +\d+ +scaled-down ").Count);
    }

    private static async Task Get(int port, string path, List<string> failures)
    {
        try
        {
            var (status, _) = await Http.GetAsync(port, path, TimeSpan.FromSeconds(30));
            if (status != 200)
            {
                lock (failures)
                {
                    failures.Add($"{path}: HTTP {status}");
                }
            }
        }
        catch (Exception e)
        {
            lock (failures)
            {
                failures.Add($"{path}: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    /// <summary>One client sending <paramref name="path"/> again and again until stopped (a request under way finishes).</summary>
    private static async Task LoopAsync(int port, string path, List<string> failures, CancellationToken stop)
    {
        await Task.Yield();
        while (!stop.IsCancellationRequested)
        {
            await Get(port, path, failures);
        }
    }

    private static async Task PacedAsync(int port, List<string> failures, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            await Get(port, "/pid", failures);
            await Task.Delay(50, CancellationToken.None);
        }
    }

    [GeneratedRegex(@"Scaling up to \d workers: \d+ connections? queued for [\d.]+ s|Scaling up to \d workers: all \d+ slots? busy")]
    private static partial Regex ScaleUpLine();
}
