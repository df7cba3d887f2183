using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
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

    /// <summary>
    /// Slowloris: 200 connections send the start of a request line and then nothing. A sync worker
    /// used to take one and wait for its head (Gunicorn's sync worker does the same); now its turn
    /// goes to a request whose head has arrived, and a normal client is still served at once.
    /// </summary>
    [Theory]
    [InlineData("sync")]
    [InlineData("gthread")]
    [InlineData("async")]
    public async Task SlowHeaderSendersDoNotStarveTheWorkers(string workerClass)
    {
        var (corral, port) = await StartAsync(2, "-k", workerClass, "--threads", workerClass == "gthread" ? "2" : "1");
        using (corral)
        {
            await WarmUpAsync(port);
            var slow = new List<Socket>();
            try
            {
                using var connecting = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                for (var i = 0; i < 200; i++)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    slow.Add(s);
                    await s.ConnectAsync(IPAddress.Loopback, port, connecting.Token);
                    await s.SendAsync(Encoding.ASCII.GetBytes("GET / HT"), connecting.Token);
                }
                for (var i = 0; i < 10; i++)
                {
                    var took = Stopwatch.StartNew();
                    var (status, _) = await Http.GetAsync(port, "/", TimeSpan.FromSeconds(10));
                    Assert.Equal(200, status);
                    Assert.True(took.Elapsed < TimeSpan.FromSeconds(1), $"request {i} took {took.Elapsed.TotalMilliseconds:0} ms");
                }
            }
            finally
            {
                foreach (var s in slow)
                {
                    s.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// A sync worker holds slow connections aside; when one of them finally sends its whole head, its
    /// request takes the worker's turn: the worker stops waiting in accept(2), and new connections go
    /// to its idle neighbour instead of queueing behind that request.
    /// </summary>
    [Fact]
    public async Task AHeldConnectionsRequestTakesItsSyncWorkersTurn()
    {
        var (corral, port) = await StartAsync(2, "-k", "sync");
        using (corral)
        {
            await WarmUpAsync(port);
            var held = new List<Socket>();
            try
            {
                for (var i = 0; i < 20; i++)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    held.Add(s);
                    await s.ConnectAsync(IPAddress.Loopback, port);
                    await s.SendAsync(Encoding.ASCII.GetBytes("GET /span?ms=2500 HTTP/1.1\r\nHost: x\r\n"));
                }
                await Task.Delay(500);
                await held[0].SendAsync(Encoding.ASCII.GetBytes("\r\n"));
                await Task.Delay(300);
                var pids = new List<int>();
                for (var i = 0; i < 6; i++)
                {
                    var took = Stopwatch.StartNew();
                    var (status, body) = await Http.GetAsync(port, "/pid", TimeSpan.FromSeconds(10));
                    Assert.Equal(200, status);
                    Assert.True(took.Elapsed < TimeSpan.FromSeconds(1), $"request {i} took {took.Elapsed.TotalMilliseconds:0} ms");
                    pids.Add(int.Parse(body, CultureInfo.InvariantCulture));
                }
                var busy = await ReadToEndAsync(held[0], TimeSpan.FromSeconds(10));
                var span = System.Text.RegularExpressions.Regex.Match(busy, @"(\d+) \d{13} \d{13}");
                Assert.True(span.Success, "the held request's response: " + busy);
                Assert.DoesNotContain(int.Parse(span.Groups[1].Value, CultureInfo.InvariantCulture), pids);
            }
            finally
            {
                foreach (var s in held)
                {
                    s.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// Requests whose heads arrive together on held connections run one after another in their sync
    /// worker: --timeout limits each of them, not the queue (5 x 1.5 s with -t 3 is no WORKER TIMEOUT).
    /// </summary>
    [Fact]
    public async Task QueuedRequestsOfASyncWorkerAreTimedOneByOne()
    {
        var (corral, port) = await StartAsync(1, "-k", "sync", "-t", "3");
        using (corral)
        {
            var held = new List<Socket>();
            try
            {
                for (var i = 0; i < 5; i++)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    held.Add(s);
                    await s.ConnectAsync(IPAddress.Loopback, port);
                    await s.SendAsync(Encoding.ASCII.GetBytes("GET /span?ms=1500 HTTP/1.1\r\nHost: x\r\n"));
                }
                await Task.Delay(500);
                foreach (var s in held)
                {
                    await s.SendAsync(Encoding.ASCII.GetBytes("\r\n"));
                }
                var responses = await Task.WhenAll(held.Select(s => ReadToEndAsync(s, TimeSpan.FromSeconds(30))));
                Assert.All(responses, r => Assert.StartsWith("HTTP/1.1 200 ", r));
                Assert.Equal(0, corral.CountLines("WORKER TIMEOUT"));
            }
            finally
            {
                foreach (var s in held)
                {
                    s.Dispose();
                }
            }
        }
    }

    /// <summary>Requests at once, so that each worker has served (its first request compiles the pipeline) before timings count.</summary>
    private static async Task WarmUpAsync(int port)
    {
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Http.GetAsync(port, "/sleep?ms=100", TimeSpan.FromSeconds(30))));
        Assert.All(answers, a => Assert.Equal(200, a.Status));
    }

    private static async Task<string> ReadToEndAsync(Socket socket, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var text = new StringBuilder();
        var buffer = new byte[4096];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token)) > 0)
        {
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        return text.ToString();
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
