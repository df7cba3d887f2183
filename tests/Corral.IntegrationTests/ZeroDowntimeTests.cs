using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>Reloads and recycling that lose nothing, seen by strict keep-alive clients (like wrk, which never retries).</summary>
public sealed class ZeroDowntimeTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task KeepAliveClientsSeeNoErrorAcrossHupsAndRecycles()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", "--max-requests", "3000", "--max-requests-jitter", "500", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);

        var clients = Enumerable.Range(0, 8).Select(_ => new KeepAliveClient()).ToList();
        using var stop = new CancellationTokenSource();
        var running = clients.Select(c => c.RunAsync(port, "/", stop.Token)).ToList();
        var workers = await corral.WaitForWorkersAsync(2, Boot);
        for (var i = 0; i < 3; i++)
        {
            await Task.Delay(1000);
            corral.Signal(SIGHUP);
            // The next HUP once this one is done: two new workers ready, the old ones gone.
            var deadline = DateTime.UtcNow + Boot;
            HashSet<int> now;
            do
            {
                now = await corral.WaitForWorkersAsync(2, Boot);
            }
            while (now.Overlaps(workers) && DateTime.UtcNow < deadline);
            workers = now;
        }
        await Task.Delay(1000);
        await stop.CancelAsync();
        await Task.WhenAll(running);

        var failures = clients.SelectMany(c => c.Failures).ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} failed requests, e.g. {string.Join("; ", failures.Take(5))}");
        Assert.True(clients.Sum(c => c.Succeeded) > 1000, $"only {clients.Sum(c => c.Succeeded)} requests");
        // The drained workers told their clients to reconnect, rather than dropping them.
        Assert.True(clients.Sum(c => c.ClosedByServer) >= 8, $"only {clients.Sum(c => c.ClosedByServer)} responses carried Connection: close while draining ({clients.Sum(c => c.Succeeded)} requests). Output:\n{string.Join("\n", corral.Lines.Where(l => !l.StartsWith(" ", StringComparison.Ordinal)))}");
        Assert.Equal(3, corral.CountLines("Hang up: Master"));
    }
}
