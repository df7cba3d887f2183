using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>
/// --request-timeout with real workers: a cooperative handler is cancelled and answered 504 at the
/// deadline (its worker stays); a handler that spins or sleeps past the deadline and its grace is
/// answered 504 (or its connection closed), the master names the request, a successor is ready
/// before the hung worker goes, and clients on both workers see no error.
/// </summary>
public sealed partial class RequestTimeoutTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);
    private const double Deadline = 2, Grace = 1, GracefulTimeout = 3;

    private static string[] Args(string app, params string[] more) =>
    [
        "-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug",
        "--request-timeout", Deadline.ToString(CultureInfo.InvariantCulture),
        "--request-timeout-grace", Grace.ToString(CultureInfo.InvariantCulture),
        "--graceful-timeout", GracefulTimeout.ToString(CultureInfo.InvariantCulture),
        .. more, app,
    ];

    [Fact]
    public async Task A_cooperative_handler_gets_504_problem_json_at_the_deadline_and_its_worker_stays()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(Args(apps.TestApp, "-k", "async"));
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);

        var clock = Stopwatch.StartNew();
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        using var response = await client.GetAsync($"http://127.0.0.1:{port}/hang/cooperative");
        var elapsed = clock.Elapsed.TotalSeconds;
        var body = await response.Content.ReadAsStringAsync();
        output.WriteLine($"cooperative: {(int)response.StatusCode} after {elapsed:0.00} s: {body}");

        Assert.Equal(504, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("\"status\":504", body, StringComparison.Ordinal);
        Assert.Contains("--request-timeout (2 s) and was cancelled", body, StringComparison.Ordinal);
        Assert.InRange(elapsed, Deadline - 0.1, Deadline + 1);
        await corral.WaitForLineAsync(@"Request GET /hang/cooperative \(request id [^ )]+\) ran past --request-timeout 2 s: cancelled, answered 504", TimeSpan.FromSeconds(5));

        // Past the grace too: the worker is not hung and is not replaced.
        await Task.Delay(TimeSpan.FromSeconds(Grace + 1));
        Assert.Equal(0, corral.CountLines("hung on"));
        Assert.True(workers.SetEquals(ProcessTree.Children(corral.Pid)), "a worker was replaced");
        Assert.Equal((200, "Hello World!"), await Http.GetAsync(port, "/"));
    }

    [Theory]
    [InlineData("/hang/spin")]
    [InlineData("/hang/sleep")]
    public async Task An_async_worker_hung_in_a_handler_is_answered_named_and_replaced_without_a_gap(string path)
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(Args(apps.TestApp, "-k", "async", "--accept-policy", "kernel"));
        await HungWorkerIsReplacedAsync(corral, path, otherRequestsOnTheHungWorker: true);
    }

    [Theory]
    [InlineData("sync")]
    [InlineData("gthread")]
    public async Task Sync_and_gthread_workers_hung_in_a_handler_are_answered_named_and_replaced(string workerClass)
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(workerClass == "gthread"
            ? Args(apps.TestApp, "-k", "gthread", "--threads", "2")
            : Args(apps.TestApp, "-k", "sync"));
        // A sync worker takes no other request while its one request hangs: the others serve.
        await HungWorkerIsReplacedAsync(corral, "/hang/sleep", otherRequestsOnTheHungWorker: workerClass == "gthread");
    }

    private async Task HungWorkerIsReplacedAsync(CorralProcess corral, string path, bool otherRequestsOnTheHungWorker)
    {
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);
        var others = new PidLoop(port, concurrency: 4);
        await Task.Delay(500);

        var sent = Stopwatch.GetTimestamp();
        var (status, body) = await TryGetAsync(port, path);
        var answeredAfter = Stopwatch.GetElapsedTime(sent).TotalSeconds;
        output.WriteLine($"{path}: {status?.ToString(CultureInfo.InvariantCulture) ?? "connection closed"} after {answeredAfter:0.00} s: {body}");
        Assert.True(status is null or 504, $"HTTP {status}: {body}");
        if (status == 504)
        {
            Assert.Contains("--request-timeout (2 s)", body, StringComparison.Ordinal);
        }
        Assert.InRange(answeredAfter, Deadline, Deadline + Grace + 1);

        var hungLine = await corral.WaitForLineAsync(
            $@"Worker \(pid:(\d+)\) hung on GET {Regex.Escape(path)} \(request id [^ )]+\) past --request-timeout 2 s: starting its successor, then it drains",
            TimeSpan.FromSeconds(5));
        var hungPid = int.Parse(hungLine.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.Contains(hungPid, workers);
        Assert.Equal(1, corral.CountLines("hung on"));

        // The master's capture of the hung worker's stacks names the handler, on the request's thread.
        var handler = path == "/hang/spin" ? "HangEndpoints.SpinForever" : "HangEndpoints.SleepForever";
        await corral.WaitForLineAsync(Regex.Escape(handler), TimeSpan.FromSeconds(10));
        Assert.True(corral.CountLines(@">> Thread \d+ \(the request's\)") >= 1, $"no stack of the request's thread. Output:\n{corral.Output}");

        // The successor is ready before the hung worker goes; it goes by --graceful-timeout after that.
        double? readyAt = null, goneAt = null;
        var clock = Stopwatch.StartNew();
        while (goneAt is null && clock.Elapsed < Boot)
        {
            readyAt ??= NewWorkerReady(corral, workers) ? clock.Elapsed.TotalSeconds : null;
            if (!IsAlive(hungPid))
            {
                goneAt = clock.Elapsed.TotalSeconds;
            }
            await Task.Delay(50);
        }
        output.WriteLine($"successor ready at +{readyAt:0.00} s, hung worker {hungPid} gone at +{goneAt:0.00} s (after the hung line)");
        Assert.True(goneAt is not null, $"worker {hungPid} still runs. Output:\n{corral.Output}");
        Assert.True(readyAt is not null && readyAt <= goneAt, $"the hung worker went before its successor was ready. Output:\n{corral.Output}");
        Assert.InRange(goneAt!.Value - readyAt!.Value, 0, GracefulTimeout + 1.5);
        foreach (var line in corral.Lines.Where(l => l.Contains(hungPid.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)))
        {
            output.WriteLine(line);
        }
        var now = await corral.WaitForWorkersAsync(2, Boot, gone: [hungPid]);
        Assert.DoesNotContain(hungPid, now);

        await Task.Delay(300);
        var (failures, served) = await others.StopAsync();
        var servedByHungAfterHang = served.Count(s => s.Pid == hungPid && s.At > sent);
        output.WriteLine($"other clients: {served.Count} served ({servedByHungAfterHang} by the hung worker while hung), {failures.Count} failed");
        Assert.True(failures.Count == 0, $"{failures.Count} failed, e.g. {string.Join("; ", failures.Take(5))}. Output:\n{corral.Output}");
        if (otherRequestsOnTheHungWorker)
        {
            Assert.True(servedByHungAfterHang > 0, "the hung worker served nobody else meanwhile");
        }
    }

    private static bool NewWorkerReady(CorralProcess corral, HashSet<int> before) =>
        corral.Lines.Select(l => ReadyLine().Match(l)).Any(m => m.Success && !before.Contains(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)));

    [GeneratedRegex(@"Worker ready \(pid: (\d+)\)")]
    private static partial Regex ReadyLine();

    /// <summary>GET on its own connection: the status and body, or a null status if the server closed the connection.</summary>
    private static async Task<(int? Status, string Body)> TryGetAsync(int port, string path)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
        try
        {
            using var response = await client.GetAsync($"http://127.0.0.1:{port}{path}");
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (HttpRequestException e)
        {
            return (null, e.Message);
        }
    }

    /// <summary>Clients asking GET /pid on new connections until stopped: who served each request and when, and every failure.</summary>
    private sealed class PidLoop
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentQueue<(int Pid, long At)> _served = new();
        private readonly ConcurrentQueue<string> _failures = new();
        private readonly Task _running;

        public PidLoop(int port, int concurrency) =>
            _running = Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(() => RunAsync(port))));

        private async Task RunAsync(int port)
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var (status, body) = await Http.GetAsync(port, "/pid", TimeSpan.FromSeconds(10));
                    if (status == 200 && int.TryParse(body, CultureInfo.InvariantCulture, out var pid))
                    {
                        _served.Enqueue((pid, Stopwatch.GetTimestamp()));
                    }
                    else
                    {
                        _failures.Enqueue($"HTTP {status}: {body}");
                    }
                }
                catch (Exception e) when (!_stop.IsCancellationRequested)
                {
                    _failures.Enqueue(e.GetType().Name + ": " + e.Message);
                }
                catch (Exception)
                {
                    return;
                }
            }
        }

        public async Task<(List<string> Failures, List<(int Pid, long At)> Served)> StopAsync()
        {
            await _stop.CancelAsync();
            await _running;
            return ([.. _failures], [.. _served]);
        }
    }
}
