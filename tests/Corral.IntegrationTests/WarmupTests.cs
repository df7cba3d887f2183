using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests;

/// <summary>--warmup-requests: a new worker serves in-memory requests before it reports ready, and nobody else sees them.</summary>
public sealed class WarmupTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-warmup-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task TheAppServesTheWarmupBeforeTheWorkerIsReadyAndNothingCountsIt()
    {
        var apps = await TestApps.GetAsync();
        var accessLog = Path.Combine(_dir, "access.log");
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:0", "--log-level", "debug", "--warmup-requests", "50",
            "--max-requests", "10", "--access-logfile", accessLog, apps.TestApp]);
        var port = await corral.PortAsync();
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        // The worker's own line comes first, then the master's "ready".
        var warmed = corral.Lines.ToList().FindIndex(l => l.Contains($"[{worker}] [DEBUG] Warmed up: 50 requests to / in ", StringComparison.Ordinal));
        var ready = corral.Lines.ToList().FindIndex(l => l.Contains($"Worker ready (pid: {worker})", StringComparison.Ordinal));
        Assert.True(warmed >= 0 && ready > warmed, corral.Output);

        // The app answered all 50...
        Assert.Equal((200, "50"), await Http.GetAsync(port, "/hits"));
        // ...and neither the access log nor --max-requests saw them: 5 real requests do not recycle at 10.
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        }
        await Task.Delay(300); // the access log is flushed in the background
        var lines = await ReadLinesAsync(accessLog);
        Assert.Equal(5, lines.Count);
        Assert.DoesNotContain(lines, l => l.Contains("corral-warmup", StringComparison.Ordinal));
        Assert.Equal(0, corral.CountLines("Autorestarting worker"));
        Assert.Equal((200, "54"), await Http.GetAsync(port, "/hits"));
    }

    [Theory]
    [InlineData("sync")]
    [InlineData("gthread")]
    public async Task TheWarmupTakesTheClassesSlotsAndGivesThemBack(string workerClass)
    {
        // sync: one connection at a time, and the worker's accept, already waiting, holds that one
        // slot: the warm-up must not wait for it. gthread --threads 1: one request at a time; warm-up
        // requests take the request slot and give it back, or the real request below would wait forever.
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "1", "-k", workerClass, "--threads", "1", "-b", "127.0.0.1:0", "--log-level", "debug", "--warmup-requests", "20", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        Assert.Equal(1, corral.CountLines("Warmed up: 20 requests to / in"));
        Assert.Equal((200, "20"), await Http.GetAsync(port, "/hits", TimeSpan.FromSeconds(10)));
        Assert.Equal(200, (await Http.GetAsync(port, "/", TimeSpan.FromSeconds(10))).Status);
    }

    [Fact]
    public async Task ASyncWorkerRunsOneRequestAtATimeWhileItWarmsUp()
    {
        // Clients knock from before the worker starts until it is ready, so that its accept, already
        // waiting when the warm-up begins, takes a real connection during the warm-up: that request
        // must wait for the warm-up, not run beside it.
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "1", "-k", "sync", "-b", "127.0.0.1:0", "--log-level", "debug",
            "--warmup-requests", "8", "--warmup-path", "/sleep?ms=100", apps.TestApp]);
        var port = await corral.PortAsync();
        using var stop = new CancellationTokenSource();
        var knocking = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            var answered = 0;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    if ((await Http.GetAsync(port, "/sleep?ms=20", TimeSpan.FromSeconds(20))).Status == 200)
                    {
                        answered++;
                    }
                }
                catch (HttpRequestException)
                {
                }
            }
            return answered;
        })).ToList();
        await corral.WaitForWorkersAsync(1, Boot);
        await Task.Delay(300);
        await stop.CancelAsync();
        var answered = (await Task.WhenAll(knocking)).Sum();

        Assert.Equal(1, corral.CountLines(@"Warmed up: 8 requests to /sleep\?ms=100 in"));
        Assert.True(answered > 0, "no knocking request was answered");
        Assert.Equal((200, "1"), await Http.GetAsync(port, "/max-in-flight"));
    }

    [Fact]
    public async Task AWarmupPathThatFailsOrHangsIsReportedAndTheWorkerServesAnyway()
    {
        var apps = await TestApps.GetAsync();
        // Two paths, one the app does not have: taken in turn, one warning for the missing one, then ready.
        using (var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:0", "--log-level", "debug", "--warmup-requests", "6",
            "--warmup-path", "/", "--warmup-path", "/nope?x=1", apps.TestApp]))
        {
            var port = await corral.PortAsync();
            await corral.WaitForWorkersAsync(1, Boot);
            Assert.Equal(1, corral.CountLines(@"\[WARNING\] Warm-up request GET /nope\?x=1 got status 404: choose a --warmup-path that answers 2xx"));
            Assert.Equal(1, corral.CountLines("Warm-up request GET"));
            Assert.Equal(1, corral.CountLines(@"Warmed up: 6 requests to /, /nope\?x=1 in"));
            Assert.Equal((200, "3"), await Http.GetAsync(port, "/hits"));
            Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        }

        // A path that hangs: the warm-up gives up at half of --timeout, and the worker is ready well within --timeout.
        using (var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:0", "--log-level", "debug", "--timeout", "6", "--graceful-timeout", "1",
            "--warmup-requests", "5", "--warmup-path", "/sleep?ms=60000", apps.TestApp]))
        {
            var port = await corral.PortAsync();
            var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();
            Assert.Equal(1, corral.CountLines(@"Warm-up stopped after 0 of 5 requests to /sleep\?ms=60000: it may take at most 3 s \(half of --timeout\)"));
            Assert.Equal(0, corral.CountLines("Warmed up"));
            Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
            // Not killed as a worker that never booted.
            await Task.Delay(4000);
            Assert.Equal(worker, (await corral.WaitForWorkersAsync(1, Boot)).Single());
            Assert.Equal(0, corral.CountLines("WORKER TIMEOUT|not ready within"));
        }
    }

    private static async Task<List<string>> ReadLinesAsync(string path)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            var lines = File.Exists(path) ? (await File.ReadAllLinesAsync(path)).Where(l => l.Length > 0).ToList() : [];
            if (lines.Count >= 5 || DateTime.UtcNow > deadline)
            {
                return lines;
            }
            await Task.Delay(100);
        }
    }
}
