using System.Diagnostics;
using System.Text;
using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Corral.Agent.Http;
using Corral.Agent.Logging;
using Corral.Agent.Metrics;
using Microsoft.AspNetCore.Http;

namespace Corral.Tests;

/// <summary>
/// --request-timeout in the worker: the middleware's deadline on real timers and threads
/// (<see cref="DefaultHttpContext"/> requests; the master is a double that notes "hung" reports).
/// </summary>
public sealed class RequestDeadlinesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-deadlines-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class Reports(string errorLog) : IWorkerReports
    {
        public AgentLog Log { get; } = new(errorLog, "debug");
        public WorkerStats Metrics { get; } = new();
        public StatsdClient? Statsd => null;
        public bool OutOfMemorySeen => false;
        public List<HungRequest> Hung { get; } = [];

        /// <summary>When the first hung report came (Stopwatch timestamp; 0: none yet).</summary>
        public long FirstHungAt { get; private set; }

        public void AskRecycle(string? reason)
        {
        }

        public void ReportHung(HungRequest request)
        {
            lock (Hung)
            {
                if (Hung.Count == 0)
                {
                    FirstHungAt = Stopwatch.GetTimestamp();
                }
                Hung.Add(request);
            }
        }
    }

    private (CorralMiddleware Middleware, Reports Reports) Build(double timeout, double grace = 5)
    {
        var options = new AgentOptions { WorkerClass = WorkerClass.Async, RequestTimeout = timeout, RequestTimeoutGrace = grace };
        var reports = new Reports(Path.Combine(_dir, "error.log"));
        return (new CorralMiddleware(options, AdmissionGate.For(options), new RequestStats(), reports), reports);
    }

    private static DefaultHttpContext Request(string path)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = path;
        context.Request.Protocol = "HTTP/1.1";
        context.TraceIdentifier = "0HN1:00000007";
        context.Response.Body = new MemoryStream();
        return context;
    }

    private static string Body(HttpContext context) => Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray());

    [Fact]
    public async Task A_cooperative_handler_is_cancelled_at_the_deadline_and_answered_504_problem_json()
    {
        var (middleware, reports) = Build(timeout: 0.3);
        var context = Request("/slow");
        var original = context.RequestAborted;
        var clock = Stopwatch.StartNew();

        await middleware.InvokeAsync(context, c => Task.Delay(Timeout.Infinite, c.RequestAborted));

        Assert.InRange(clock.Elapsed.TotalSeconds, 0.25, 2);
        Assert.Equal(504, context.Response.StatusCode);
        Assert.Equal("application/problem+json", context.Response.ContentType);
        Assert.Equal(
            """{"type":"https://www.rfc-editor.org/rfc/rfc9110#section-15.6.5","title":"The request ran past --request-timeout","status":504,"detail":"The request ran past --request-timeout (0.3 s) and was cancelled."}""",
            Body(context));
        Assert.Empty(reports.Hung);
        Assert.Equal(0, middleware.Running!.Count);
        Assert.Equal(original, context.RequestAborted); // the connection's own token again
        Assert.Contains("\"GET 5xx\":1", reports.Metrics.Format(0), StringComparison.Ordinal);
        Assert.Contains("Request GET /slow (request id 0HN1:00000007) ran past --request-timeout 0.3 s: cancelled, answered 504",
            File.ReadAllText(Path.Combine(_dir, "error.log")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_request_that_ends_in_time_is_untouched()
    {
        var (middleware, reports) = Build(timeout: 5);
        var context = Request("/");
        var original = context.RequestAborted;
        var sawLinked = false;

        await middleware.InvokeAsync(context, async c =>
        {
            sawLinked = c.RequestAborted != original && c.RequestAborted.CanBeCanceled;
            await c.Response.WriteAsync("ok");
        });

        Assert.True(sawLinked);
        Assert.Equal(200, context.Response.StatusCode);
        Assert.Equal("ok", Body(context));
        Assert.Equal(original, context.RequestAborted);
        Assert.Empty(reports.Hung);
    }

    [Fact]
    public async Task Without_a_request_timeout_nothing_is_kept_and_the_token_is_the_connections()
    {
        var (middleware, _) = Build(timeout: 0);
        var context = Request("/");
        var original = context.RequestAborted;
        var seen = default(CancellationToken);

        await middleware.InvokeAsync(context, c =>
        {
            seen = c.RequestAborted;
            return Task.CompletedTask;
        });

        Assert.Null(middleware.Running);
        Assert.Null(middleware.Deadlines);
        Assert.Equal(original, seen);
    }

    [Fact]
    public async Task A_handler_still_running_after_the_grace_is_reported_hung_with_its_thread_and_answered_504()
    {
        var (middleware, reports) = Build(timeout: 0.2, grace: 0.3);
        var context = Request("/hang/sleep");
        using var release = new ManualResetEventSlim();
        var handlerTid = 0;
        using var entered = new ManualResetEventSlim();
        var started = Stopwatch.GetTimestamp();

        // A synchronous hang: the thread that entered the handler is kept, and the token is ignored.
        var served = Task.Run(() => middleware.InvokeAsync(context, _ =>
        {
            handlerTid = ThreadIds.Current;
            entered.Set();
            release.Wait(TimeSpan.FromSeconds(20));
            return Task.CompletedTask;
        }));
        Assert.True(entered.Wait(TimeSpan.FromSeconds(5)));
        var listed = Assert.Single(middleware.Running!.List());
        Assert.Equal(("GET", "/hang/sleep", "0HN1:00000007", handlerTid), (listed.Method, listed.Path, listed.RequestId, listed.OsThreadId));

        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (reports.Hung.Count == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        var hung = Assert.Single(reports.Hung);
        // When the report was made, not when this loop (on a pool a parallel test run may keep busy) saw it.
        var hungAfter = Stopwatch.GetElapsedTime(started, reports.FirstHungAt).TotalSeconds;
        Assert.Equal(new HungRequest(handlerTid, "GET", "/hang/sleep", "0HN1:00000007"), hung);
        Assert.InRange(hungAfter, 0.45, 3);
        Assert.NotEqual(Environment.ProcessId, handlerTid); // an OS thread id of its own, not the process's

        // The client's answer is written while the handler is still stuck (from another thread: wait for
        // all of it, not its first bytes, before reading it).
        while (!Body(context).Contains("the worker is being replaced", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        Assert.Equal(504, context.Response.StatusCode);
        Assert.Contains("still ran 0.3 s later: the worker is being replaced", Body(context), StringComparison.Ordinal);
        Assert.Equal("close", context.Response.Headers.Connection.ToString());
        Assert.False(served.IsCompleted);

        release.Set();
        await served.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Single(reports.Hung); // once per request
        Assert.Equal(0, middleware.Running.Count);
    }

    [Fact]
    public async Task The_registry_names_the_running_requests_oldest_first_and_forgets_them_as_they_end()
    {
        var running = new RunningRequests();
        var options = new AgentOptions { WorkerClass = WorkerClass.Async };
        var middleware = new CorralMiddleware(options, AdmissionGate.For(options), new RequestStats(), new Reports(Path.Combine(_dir, "error.log")), running: running);
        var gate = new TaskCompletionSource();
        var first = Request("/a");
        var second = Request("/b");
        second.Request.PathBase = "/app";
        second.Request.Method = "POST";

        var a = middleware.InvokeAsync(first, _ => gate.Task);
        var b = middleware.InvokeAsync(second, _ => gate.Task);

        Assert.Same(running, middleware.Running);
        Assert.Equal([("GET", "/a"), ("POST", "/app/b")], running.List().Select(r => (r.Method, r.Path)));
        Assert.Null(middleware.Deadlines); // kept for whoever asks, but no deadline
        gate.SetResult();
        await Task.WhenAll(a, b);
        Assert.Empty(running.List());
    }

    [Fact]
    public void The_summary_for_a_starvation_report_counts_each_endpoint_most_requests_first()
    {
        var running = new RunningRequests();
        Assert.Null(running.Summary());
        var kept = new List<RunningRequest>();
        foreach (var path in new[] { "/block", "/fast", "/block", "/block" })
        {
            kept.Add(running.Add(Request(path)));
        }
        Assert.Matches(@"^GET /block x3 \(oldest \d+\.\d s\), GET /fast x1 \(oldest \d+\.\d s\)$", running.Summary());

        for (var i = 0; i < 6; i++)
        {
            kept.Add(running.Add(Request($"/other{i}")));
        }
        Assert.EndsWith(", and 3 more", running.Summary(), StringComparison.Ordinal);
        Assert.Equal(5, running.Summary()!.Split(" x").Length - 1);

        kept.ForEach(running.Remove);
        Assert.Null(running.Summary());
    }

    private sealed class Upgradable : Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature
    {
        public bool IsUpgradableRequest => true;
        public Task<Stream> UpgradeAsync() => Task.FromResult<Stream>(new MemoryStream());
    }

    [Fact]
    public async Task An_upgrade_gets_no_deadline()
    {
        var (middleware, reports) = Build(timeout: 0.1, grace: 0.1);
        var context = Request("/ws");
        context.Features.Set<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>(new Upgradable());
        var original = context.RequestAborted;
        var seen = default(CancellationToken);

        await middleware.InvokeAsync(context, async c =>
        {
            seen = c.RequestAborted;
            await Task.Delay(500);
        });

        Assert.Equal(original, seen);
        Assert.Equal(200, context.Response.StatusCode);
        Assert.Empty(reports.Hung);
    }

    [Fact]
    public async Task A_client_that_goes_is_not_a_deadline()
    {
        var (middleware, reports) = Build(timeout: 5);
        var context = Request("/slow");
        using var client = new CancellationTokenSource();
        context.RequestAborted = client.Token;

        var served = middleware.InvokeAsync(context, c => Task.Delay(Timeout.Infinite, c.RequestAborted));
        await client.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => served);
        Assert.NotEqual(504, context.Response.StatusCode);
        Assert.Empty(reports.Hung);
        Assert.Equal(0, middleware.Running!.Count);
    }

    [Fact]
    public void The_hung_line_is_one_word_per_field_and_parses_back()
    {
        var line = Protocol.FormatHung(4242, "GET", "/a%20b/c d", "id 1\n");
        Assert.Equal("hung 4242 GET /a%20b/c_d id_1_", line);
        Assert.Equal(new Message(MessageKind.Hung, Hung: new HungRequest(4242, "GET", "/a%20b/c_d", "id_1_")), Protocol.Parse(line));
        Assert.Equal("hung 1 GET / -", Protocol.FormatHung(1, "GET", "", ""));
        Assert.Null(Protocol.Parse("hung x GET / id"));
        Assert.Null(Protocol.Parse("hung 1 GET /"));
        Assert.Null(Protocol.Parse("hung 1 GET / id extra"));
    }
}
