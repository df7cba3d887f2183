using System.Globalization;
using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>
/// --accept-policy: with pack (the async class's default) one ready worker takes every new connection
/// and the others take only what it leaves in the queue; with kernel every idle worker accepts.
/// </summary>
public sealed class AcceptPolicyTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);
    private const string LeaderLine = @"\[(\d+)\] \[DEBUG\] Worker takes new connections first";

    private static async Task<List<int>> PidsAsync(int port, int n)
    {
        var pids = new List<int>();
        for (var i = 0; i < n; i++)
        {
            var (status, body) = await Http.GetAsync(port, "/pid", TimeSpan.FromSeconds(10));
            Assert.Equal(200, status);
            pids.Add(int.Parse(body, CultureInfo.InvariantCulture));
        }
        return pids;
    }

    [Fact]
    public async Task PackSendsEveryConnectionToOneWorkerAndTheOtherTakesOverWhenItIsPaused()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var first = await corral.WaitForWorkersAsync(2, Boot);
        var leader = int.Parse((await corral.WaitForLineAsync(LeaderLine, Boot)).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.Contains(leader, first);

        // Each request on a new connection: every one reaches the leader, none the idle follower.
        Assert.All(await PidsAsync(port, 30), pid => Assert.Equal(leader, pid));

        // A leader that cannot accept (paused here; saturated or in a long GC in real life): the
        // connections wait a moment in the queue and the follower takes them.
        var follower = first.Single(p => p != leader);
        try
        {
            await StopAsync(leader);
            Assert.All(await PidsAsync(port, 5), pid => Assert.Equal(follower, pid));
        }
        finally
        {
            Kill(leader, SIGCONT);
        }
        Assert.All(await PidsAsync(port, 10), pid => Assert.Equal(leader, pid));

        // HUP: the old leader lets go as it drains, and one new worker leads.
        corral.Signal(SIGHUP);
        var fresh = await corral.WaitForWorkersAsync(2, Boot, gone: first);
        var newLeader = int.Parse((await corral.WaitForLineAsync(LeaderLine, Boot, occurrence: 2)).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.Contains(newLeader, fresh);
        // Both new workers have just booted, on cores the old ones left a moment ago: a leader still
        // compiling its first requests' code can be over 10 ms late to accept, and the follower then
        // takes the connection, as it should. Warmed by a few requests, the leader takes all.
        await PidsAsync(port, 10);
        Assert.All(await PidsAsync(port, 20), pid => Assert.Equal(newLeader, pid));
        Assert.DoesNotContain(corral.Lines, l => l.Contains("[ERROR]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AfterUsr2TheOldLeaderLeadsUntilWinchThenOneNewWorker()
    {
        // Both masters' workers share one leader name: before WINCH the new generation only takes
        // what the old leader leaves in the queue, so two runtimes are not busy at once.
        var apps = await TestApps.GetAsync();
        var pidFile = Path.Combine(Scratch.NewDirectory("corral-accept-"), "corral.pid");
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:0", "-p", pidFile, "--log-level", "debug", apps.TestApp]);
        var newMaster = 0;
        try
        {
            var port = await corral.PortAsync();
            var old = (await corral.WaitForWorkersAsync(1, Boot)).Single();
            var leader = int.Parse((await corral.WaitForLineAsync(LeaderLine, Boot)).Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.Equal(old, leader);

            corral.Signal(SIGUSR2);
            await WaitUntilAsync(() => File.Exists(pidFile + ".2") && File.ReadAllText(pidFile + ".2").Trim().Length > 0);
            newMaster = int.Parse(File.ReadAllText(pidFile + ".2").Trim(), CultureInfo.InvariantCulture);
            await corral.WaitForLineAsync($@"\[{newMaster}\] \[DEBUG\] Worker ready", Boot);
            var fresh = Children(newMaster).Single();
            Assert.All(await PidsAsync(port, 20), pid => Assert.Equal(old, pid));
            Assert.Equal(1, corral.CountLines(LeaderLine));

            // WINCH: the old worker drains and lets go; the new master's worker leads.
            corral.Signal(SIGWINCH);
            var newLeader = int.Parse((await corral.WaitForLineAsync(LeaderLine, Boot, occurrence: 2)).Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.Equal(fresh, newLeader);
            Assert.All(await PidsAsync(port, 20), pid => Assert.Equal(fresh, pid));
            corral.Signal(SIGTERM);
            Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.All(await PidsAsync(port, 5), pid => Assert.Equal(fresh, pid));
            Assert.DoesNotContain(corral.Lines, l => l.Contains("[ERROR]", StringComparison.Ordinal));
        }
        finally
        {
            if (newMaster > 0)
            {
                foreach (var pid in Descendants(newMaster).Append(newMaster))
                {
                    Kill(pid, SIGKILL);
                }
            }
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Boot;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(50);
        }
    }

    [Theory]
    [InlineData("-k", "async", "--accept-policy", "kernel")]
    [InlineData("-k", "gthread", "--threads", "2")]
    public async Task KernelPolicyAndTheOtherClassesHaveNoLeader(params string[] args)
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start([.. args, "-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);
        Assert.Equal(20, (await PidsAsync(port, 20)).Count);
        Assert.Equal(0, corral.CountLines(LeaderLine));
    }
}
