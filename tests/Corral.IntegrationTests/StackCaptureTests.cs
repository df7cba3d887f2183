using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Corral.Diagnostics;
using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>
/// The evidence in the log: the master captures the managed stacks of a worker (over the runtime's
/// diagnostics socket, as dotnet-stack does) before it aborts a timed-out one, and when its thread
/// pool starves; the log names the method that blocks (tests/apps/TestApp/StackProbe.cs).
/// </summary>
public sealed class StackCaptureTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task StackCaptureNamesTheBlockedMethodOfARunningProcess()
    {
        var apps = await TestApps.GetAsync();
        var psi = new ProcessStartInfo("dotnet", [apps.TestApp, "--urls", "http://127.0.0.1:0"])
        {
            RedirectStandardOutput = true,
            WorkingDirectory = Path.GetDirectoryName(apps.TestApp)!,
        };
        psi.Environment.Remove("ASPNETCORE_URLS");
        using var app = Process.Start(psi)!;
        try
        {
            var port = 0;
            var deadline = DateTime.UtcNow + Boot;
            while (port == 0 && DateTime.UtcNow < deadline && await app.StandardOutput.ReadLineAsync() is { } line)
            {
                if (Regex.Match(line, @"Now listening on: http://127\.0\.0\.1:(\d+)") is { Success: true } m)
                {
                    port = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                }
            }
            Assert.NotEqual(0, port);
            _ = Task.Run(async () =>
            {
                while (await app.StandardOutput.ReadLineAsync() is not null)
                {
                }
            });
            var blocked = Http.GetAsync(port, "/stacks/block?ms=8000", TimeSpan.FromSeconds(20));
            await Task.Delay(500);

            var started = Stopwatch.GetTimestamp();
            var threads = await StackCapture.CaptureAsync(app.Id, TimeSpan.FromSeconds(10));
            var took = Stopwatch.GetElapsedTime(started);

            var blocker = Assert.Single(threads, t => t.Frames.Any(f => f.Contains("StackProbe.BlockHere", StringComparison.Ordinal)));
            Assert.Contains(threads, t => t.OsThreadId > 0);
            var shown = StackFormat.Trim(blocker.Frames);
            Assert.Contains(shown, f => f.StartsWith("StackProbe.BlockHere", StringComparison.Ordinal));
            Assert.True(took < TimeSpan.FromSeconds(5), $"one capture took {took.TotalMilliseconds:0} ms");
            Assert.Equal(200, (await blocked).Status); // the capture paused nothing for good
        }
        finally
        {
            app.Kill();
            await app.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task WorkerTimeoutLogsTheStacksOfWhatWasStuckBeforeTheAbort()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-k", "sync", "-t", "3", "-w", "1", "--log-level", "debug", "-b", "127.0.0.1:0", apps.TestApp]);
        var port = await corral.PortAsync();
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        var stuck = Http.GetAsync(port, "/stacks/block?ms=30000", TimeSpan.FromSeconds(40));
        await corral.WaitForLineAsync($@"\[CRITICAL\] WORKER TIMEOUT \(pid:{worker}\)", TimeSpan.FromSeconds(10));
        await corral.WaitForLineAsync($@"\[ERROR\] Stacks of worker \(pid:{worker}\) \(WORKER TIMEOUT\): \d+ threads", TimeSpan.FromSeconds(10));
        await corral.WaitForLineAsync(@"^\s+StackProbe\.BlockHere\(int32\)", TimeSpan.FromSeconds(5));
        // Taken from the live worker (a dead one has no stacks to give); then it is aborted and replaced.
        await Assert.ThrowsAnyAsync<Exception>(() => stuck);
        var replacement = (await corral.WaitForWorkersAsync(1, Boot, gone: [worker])).Single();
        Assert.NotEqual(worker, replacement);
        Assert.False(IsAlive(worker));
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
    }

    [Fact]
    public async Task AWorkerWithDiagnosticsDisabledSaysWhyAndIsStillKilled()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-k", "sync", "-t", "3", "-w", "1", "--log-level", "debug", "-b", "127.0.0.1:0", "-e", "DOTNET_EnableDiagnostics=0", apps.TestApp]);
        var port = await corral.PortAsync();
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        var stuck = Http.GetAsync(port, "/stacks/block?ms=30000", TimeSpan.FromSeconds(40));
        await corral.WaitForLineAsync($@"WORKER TIMEOUT \(pid:{worker}\)", TimeSpan.FromSeconds(10));
        await corral.WaitForLineAsync($@"\[WARNING\] Worker \(pid:{worker}\) stacks not captured \(WORKER TIMEOUT\): diagnostics are disabled in the worker \(DOTNET_EnableDiagnostics=0", TimeSpan.FromSeconds(5));
        await Assert.ThrowsAnyAsync<Exception>(() => stuck);
        await corral.WaitForWorkersAsync(1, Boot, gone: [worker]);
        Assert.False(IsAlive(worker));
    }

    [Fact]
    public async Task AStarvedThreadPoolIsLoggedOnceWithTheBlockingMethodAndCounted()
    {
        var apps = await TestApps.GetAsync();
        // The guard raises the pool's minimum up to --worker-connections + cores: a small cap, so that
        // 16 work items blocking 3 s each (sync over async) leave work queued for seconds.
        using var corral = CorralProcess.Start(["-k", "async", "-w", "1", "--worker-connections", "2", "--log-level", "debug", "-b", "127.0.0.1:0",
            "--metrics-bind", "127.0.0.1:0", apps.TestApp]);
        var port = await corral.PortAsync();
        var metrics = await Observability.Observe.MetricsPortAsync(corral);
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        var starve = Http.GetAsync(port, "/stacks/starve?n=16&ms=3000", TimeSpan.FromSeconds(60));
        await corral.WaitForLineAsync($@"\[WARNING\] Worker \(pid:{worker}\) thread pool starved: queued work waited \d+ ms", TimeSpan.FromSeconds(15));
        await corral.WaitForLineAsync($@"Stacks of worker \(pid:{worker}\) \(thread pool starved\): \d+ threads", TimeSpan.FromSeconds(10));
        await corral.WaitForLineAsync(@"^\s+StackProbe\.BlockHere\(int32\)", TimeSpan.FromSeconds(5));
        Assert.Equal(200, (await starve).Status);
        await Observability.Observe.ScrapeUntilAsync(metrics, s => Observability.Observe.Sum(s, "corral_worker_starvation_episodes_total") >= 1, TimeSpan.FromSeconds(10), "the episode counted");

        // One episode, one warning: the pool stayed starved for seconds.
        await Task.Delay(1000);
        Assert.Equal(1, corral.CountLines("thread pool starved: queued work waited"));
        Assert.Equal(1, Observability.Observe.Sum(await Observability.Observe.ScrapeAsync(metrics), "corral_worker_starvation_episodes_total"));
        Assert.True(IsAlive(worker)); // starvation is reported, not punished
    }
}
