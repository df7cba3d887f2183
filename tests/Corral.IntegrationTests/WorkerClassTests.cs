using System.Globalization;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests;

/// <summary>
/// The worker classes' semantics with the seed's blocking IO endpoint (t = 1 s): who runs at once and
/// who waits, read from when each request actually ran, not from wall-clock totals.
/// </summary>
public sealed class WorkerClassTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    private sealed record Span(int Pid, long Start, long End);

    private static async Task<List<Span>> FireAsync(int port, int n, int ms)
    {
        var bodies = await Task.WhenAll(Enumerable.Range(0, n).Select(_ => Http.GetAsync(port, $"/span?ms={ms}", TimeSpan.FromSeconds(60))));
        return bodies.Select(b =>
        {
            Assert.Equal(200, b.Status);
            var p = b.Body.Split(' ');
            return new Span(int.Parse(p[0], CultureInfo.InvariantCulture), long.Parse(p[1], CultureInfo.InvariantCulture), long.Parse(p[2], CultureInfo.InvariantCulture));
        }).ToList();
    }

    /// <summary>The most requests that ran at the same moment.</summary>
    private static int MaxOverlap(IEnumerable<Span> spans)
    {
        var edges = spans.SelectMany(s => new[] { (s.Start, +1), (s.End, -1) }).OrderBy(e => e.Item1).ThenBy(e => e.Item2);
        int now = 0, max = 0;
        foreach (var (_, d) in edges)
        {
            now += d;
            max = Math.Max(max, now);
        }
        return max;
    }

    private static async Task<(CorralProcess Corral, int Port)> StartAsync(int workers, params string[] args)
    {
        var apps = await TestApps.GetAsync();
        var corral = CorralProcess.Start([.. args, "-w", workers.ToString(CultureInfo.InvariantCulture), "-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(workers, Boot);
        return (corral, port);
    }

    [Fact]
    public async Task SyncOneWorkerRunsOneRequestAtATime()
    {
        var (corral, port) = await StartAsync(1, "-k", "sync");
        using (corral)
        {
            var spans = await FireAsync(port, 4, 500);
            Assert.Equal(1, MaxOverlap(spans));
        }
    }

    [Fact]
    public async Task SyncTwoWorkersRunTwoAtATimeOnePerWorker()
    {
        var (corral, port) = await StartAsync(2, "-k", "sync");
        using (corral)
        {
            var spans = await FireAsync(port, 6, 700);
            Assert.Equal(2, MaxOverlap(spans));
            Assert.All(spans.GroupBy(s => s.Pid), g => Assert.Equal(1, MaxOverlap(g)));
            Assert.Equal(2, spans.Select(s => s.Pid).Distinct().Count());
        }
    }

    [Fact]
    public async Task ABusySyncWorkersNeighbourTakesTheNextConnection()
    {
        var (corral, port) = await StartAsync(2, "-k", "sync");
        using (corral)
        {
            var slow = FireAsync(port, 1, 3000);
            await Task.Delay(300);
            var fast = (await FireAsync(port, 1, 0)).Single();
            var busy = (await slow).Single();
            Assert.NotEqual(busy.Pid, fast.Pid);
            Assert.True(fast.Start < busy.End, "the second request waited for the busy worker");
        }
    }

    [Fact]
    public async Task SyncClosesEveryConnection()
    {
        var (corral, port) = await StartAsync(1, "-k", "sync");
        using (corral)
        {
            var headers = await Http.HeadersAsync(port, "/");
            Assert.True(headers.ConnectionClose);
        }
    }

    [Fact]
    public async Task GthreadRunsThreadsRequestsAtOnceAndKeepsConnectionsAlive()
    {
        var (corral, port) = await StartAsync(1, "--threads", "2");
        using (corral)
        {
            await corral.WaitForLineAsync("Using worker: gthread", TimeSpan.FromSeconds(1));
            var spans = await FireAsync(port, 6, 700);
            Assert.Equal(2, MaxOverlap(spans));
            var headers = await Http.HeadersAsync(port, "/");
            Assert.NotEqual(true, headers.ConnectionClose);
        }
    }

    [Fact]
    public async Task AsyncRunsTenBlockingRequestsAtOnce()
    {
        var (corral, port) = await StartAsync(1, "-k", "async");
        using (corral)
        {
            var spans = await FireAsync(port, 10, 1000);
            Assert.Equal(10, MaxOverlap(spans));
        }
    }
}
