using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>A worker's exit, however it is asked for, says "Worker exiting" once and runs its exit handlers.</summary>
public sealed class WorkerExitTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Ctrl-C in a terminal sends INT to the whole foreground process group: the master and every
    /// worker get it, and the master then sends each worker QUIT as well.
    /// </summary>
    [Fact]
    public async Task CtrlCStopsEveryWorkerWithOneExitingLineEach()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-w", "3", "--log-level", "debug", apps.TestApp]);
        var workers = await corral.WaitForWorkersAsync(3, Boot);

        // As the terminal does (the test's corral is not in a process group of its own, so one by
        // one), with the QUIT the master sends each worker on its INT arriving at the same moment
        // (from the master it comes a few milliseconds later, and may or may not meet the INT).
        foreach (var pid in workers)
        {
            Kill(pid, SIGINT);
            Kill(pid, SIGQUIT);
        }
        corral.Signal(SIGINT);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(15)));

        foreach (var pid in workers)
        {
            Assert.False(IsAlive(pid));
            Assert.True(corral.CountLines($@"Worker exiting \(pid: {pid}\)$") == 1, $"worker {pid}:\n{corral.Output}");
        }
    }

    /// <summary>
    /// A second TERM that reaches a draining worker as its host is gone (the master's stop meeting a
    /// --max-requests recycle) used to end it by TERM's default action: no "Worker exiting", no last stats.
    /// </summary>
    [Fact]
    public async Task TermsThatKeepComingWhileAWorkerExitsDoNotKillIt()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-w", "1", "--log-level", "debug", apps.TestApp]);
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        // Not through the master (which would expect the exit): its exit is logged with how it ended.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (Kill(worker, SIGTERM) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }
        await corral.WaitForLineAsync($@"Worker \(pid:{worker}\) (exited with code|was sent)", TimeSpan.FromSeconds(15));
        Assert.Equal(1, corral.CountLines($@"Worker exiting \(pid: {worker}\)$"));
        Assert.Equal(1, corral.CountLines($@"Worker \(pid:{worker}\) exited with code 0$"));
    }
}
