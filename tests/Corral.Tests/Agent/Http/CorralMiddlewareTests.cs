using System.Net;
using System.Text;
using System.Text.Json;
using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Corral.Agent.Http;
using Corral.Agent.Logging;
using Corral.Agent.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Corral.Tests;

/// <summary>
/// The outermost middleware on <see cref="DefaultHttpContext"/> requests, with real options, gate,
/// request counts, worker metrics and logs (in a temporary directory); only the master, which a
/// recycle is asked of, is a double.
/// </summary>
public sealed class CorralMiddlewareTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-middleware-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The error log, the metrics and statsd are real; the recycle requests are noted, with what the worker's counts were then.</summary>
    private sealed class Reports(string errorLog, RequestStats stats) : IWorkerReports
    {
        public AgentLog Log { get; } = new(errorLog, "debug");
        public WorkerStats Metrics { get; } = new();
        public StatsdClient? Statsd { get; init; }
        public bool OutOfMemorySeen { get; set; }
        public List<(string? Reason, long Served, int InFlight)> Recycles { get; } = [];

        public List<HungRequest> Hung { get; } = [];

        public void ReportHung(HungRequest request)
        {
            lock (Hung)
            {
                Hung.Add(request);
            }
        }

        public void AskRecycle(string? reason)
        {
            var (served, inFlight, _) = stats.Snapshot();
            lock (Recycles)
            {
                Recycles.Add((reason, served, inFlight));
            }
        }
    }

    private sealed class Worker
    {
        public required AgentOptions Options { get; init; }
        public required AdmissionGate Gate { get; init; }
        public required RequestStats Stats { get; init; }
        public required Reports Reports { get; init; }
        public required CorralMiddleware Middleware { get; init; }
        public required string ErrorLog { get; init; }
    }

    private Worker Build(AgentOptions options, StatsdClient? statsd = null)
    {
        var errorLog = Path.Combine(_dir, "error.log");
        var stats = new RequestStats();
        var gate = AdmissionGate.For(options);
        var reports = new Reports(errorLog, stats) { Statsd = statsd };
        return new Worker
        {
            Options = options,
            Gate = gate,
            Stats = stats,
            Reports = reports,
            Middleware = new CorralMiddleware(options, gate, stats, reports),
            ErrorLog = errorLog,
        };
    }

    private static DefaultHttpContext Request(string path = "/", string protocol = "HTTP/1.1", string remote = "10.0.0.9", params (string Name, string Value)[] headers)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = path;
        context.Features.Get<IHttpRequestFeature>()!.RawTarget = path; // as Kestrel: the target as sent
        context.Request.Protocol = protocol;
        context.Connection.RemoteIpAddress = IPAddress.Parse(remote);
        foreach (var (name, value) in headers)
        {
            context.Request.Headers.Append(name, value);
        }
        var body = new MemoryStream();
        context.Response.Body = body;
        context.Items[typeof(MemoryStream)] = body;
        return context;
    }

    /// <summary>What reached the response body under the middleware's counter.</summary>
    private static string Body(HttpContext context) => Encoding.UTF8.GetString(((MemoryStream)context.Items[typeof(MemoryStream)]!).ToArray());

    private static RequestDelegate Answer(int status = 200, string body = "") => async context =>
    {
        context.Response.StatusCode = status;
        if (body.Length > 0)
        {
            await context.Response.WriteAsync(body);
        }
    };

    private static long Requests(WorkerStats metrics, string key) =>
        JsonDocument.Parse(metrics.Format(0)).RootElement.GetProperty("requests").TryGetProperty(key, out var n) ? n.GetInt64() : 0;

    /// <summary>The access log is written off the request path: waits for <paramref name="count"/> lines.</summary>
    private static async Task<string[]> AccessLines(string path, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var lines = File.Exists(path) ? File.ReadAllLines(path) : [];
            if (lines.Length >= count || DateTime.UtcNow > deadline)
            {
                return lines;
            }
            await Task.Delay(20);
        }
    }

    private static string[] ErrorLines(Worker worker) => File.Exists(worker.ErrorLog) ? File.ReadAllLines(worker.ErrorLog) : [];

    [Fact]
    public async Task A_request_is_in_flight_while_the_app_runs_then_served_and_recorded()
    {
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Async });
        (long Served, int InFlight) during = default;
        await worker.Middleware.InvokeAsync(Request(), async context =>
        {
            var (served, inFlight, _) = worker.Stats.Snapshot();
            during = (served, inFlight);
            await Answer(204)(context);
        });

        Assert.Equal((0L, 1), during);
        var (servedAfter, inFlightAfter, busyMs) = worker.Stats.Snapshot();
        Assert.Equal((1L, 0, 0L), (servedAfter, inFlightAfter, busyMs));
        Assert.Equal(1, Requests(worker.Reports.Metrics, "GET 2xx"));
        Assert.Empty(worker.Reports.Recycles);
    }

    [Theory]
    [InlineData("sync", "HTTP/1.1", "close")]
    [InlineData("sync", "HTTP/1.0", "close")]
    [InlineData("sync", "HTTP/2", "")]
    [InlineData("sync", "HTTP/3", "")]
    [InlineData("gthread", "HTTP/1.1", "")]
    [InlineData("async", "HTTP/1.1", "")]
    public async Task The_sync_class_closes_every_HTTP1_connection_after_its_request(string workerClass, string protocol, string connection)
    {
        var worker = Build(new AgentOptions { WorkerClass = WorkerClassPolicy.Named(workerClass)!.Class, Threads = 2 });
        var context = Request(protocol: protocol);
        await worker.Middleware.InvokeAsync(context, Answer());
        Assert.Equal(connection, context.Response.Headers.Connection.ToString());
    }

    [Theory]
    [InlineData("HTTP/1.1", "close")]
    [InlineData("HTTP/2", "")]
    public async Task A_draining_worker_tells_the_client_this_request_is_the_connections_last(string protocol, string connection)
    {
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Async });
        var before = Request(protocol: protocol);
        await worker.Middleware.InvokeAsync(before, Answer());
        Assert.Equal("", before.Response.Headers.Connection.ToString());

        await worker.Gate.BeginDrainAsync().WaitAsync(TimeSpan.FromSeconds(5));
        var context = Request(protocol: protocol);
        await worker.Middleware.InvokeAsync(context, Answer());
        Assert.Equal(connection, context.Response.Headers.Connection.ToString());
    }

    [Fact]
    public async Task A_field_longer_than_the_limit_is_refused_with_431_naming_it()
    {
        // "X-Big: " + value: the name, ": " and the value count; exactly the limit passes.
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Async, Limits = new() { RequestFieldSize = 20 } });
        var called = 0;
        RequestDelegate app = context =>
        {
            called++;
            return Answer()(context);
        };

        var atLimit = Request(headers: ("X-Big", new string('a', 13)));
        await worker.Middleware.InvokeAsync(atLimit, app);
        Assert.Equal((200, 1), (atLimit.Response.StatusCode, called));

        var over = Request(headers: ("X-Big", new string('a', 14)));
        await worker.Middleware.InvokeAsync(over, app);
        Assert.Equal(1, called);
        Assert.Equal(StatusCodes.Status431RequestHeaderFieldsTooLarge, over.Response.StatusCode);
        Assert.Equal("text/plain", over.Response.ContentType);
        Assert.Equal("close", over.Response.Headers.Connection.ToString());
        Assert.Equal("Request header field 'X-Big' is larger than --limit-request-field_size (20 bytes)\n", Body(over));
        Assert.Equal(1, Requests(worker.Reports.Metrics, "GET 4xx"));
        Assert.Equal(2, worker.Stats.Snapshot().Served);
    }

    [Fact]
    public async Task No_field_limit_lets_any_field_through()
    {
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Async, Limits = new() { RequestFieldSize = 0 } });
        var context = Request(headers: ("X-Big", new string('a', 100_000)));
        await worker.Middleware.InvokeAsync(context, Answer());
        Assert.Equal(200, context.Response.StatusCode);
    }

    [Fact]
    public async Task Contradictory_scheme_headers_from_a_trusted_proxy_get_400_and_the_app_never_sees_them()
    {
        var worker = Build(new AgentOptions
        {
            WorkerClass = WorkerClass.Async,
            Proxy = new() { ForwardedAllowIps = "127.0.0.1", SecureSchemeHeaders = new() { ["X-FORWARDED-PROTO"] = "https", ["X-FORWARDED-SSL"] = "on" } },
        });
        var called = 0;
        RequestDelegate app = context =>
        {
            called++;
            return Answer()(context);
        };
        (string Name, string Value)[] contradictory = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")];

        var fromProxy = Request(remote: "127.0.0.1", headers: contradictory);
        await worker.Middleware.InvokeAsync(fromProxy, app);
        Assert.Equal(0, called);
        Assert.Equal(StatusCodes.Status400BadRequest, fromProxy.Response.StatusCode);
        Assert.Equal("text/plain", fromProxy.Response.ContentType);
        Assert.Equal("Contradictory scheme headers\n", Body(fromProxy));
        Assert.Equal(1, Requests(worker.Reports.Metrics, "GET 4xx"));

        // Not from a trusted peer: its headers are not read at all.
        var direct = Request(remote: "10.0.0.9", headers: contradictory);
        await worker.Middleware.InvokeAsync(direct, app);
        Assert.Equal((1, 200), (called, direct.Response.StatusCode));
    }

    [Fact]
    public async Task The_access_log_line_has_the_status_the_bytes_and_the_forwarded_client()
    {
        var accessLog = Path.Combine(_dir, "access.log");
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Async, Logs = new() { AccessLogFile = accessLog, AccessLogFormat = "%(h)s \"%(r)s\" %(s)s %(b)s" } });

        await worker.Middleware.InvokeAsync(Request("/hello", remote: "127.0.0.1", headers: ("X-Forwarded-For", "203.0.113.7")), Answer(201, "hello"));
        await worker.Middleware.InvokeAsync(Request("/empty"), Answer(204));

        var lines = await AccessLines(accessLog, 2);
        Assert.Equal(["203.0.113.7 \"GET /hello HTTP/1.1\" 201 5", "10.0.0.9 \"GET /empty HTTP/1.1\" 204 0"], lines);
    }

    [Fact]
    public async Task The_json_access_log_has_the_status_and_the_bytes()
    {
        var accessLog = Path.Combine(_dir, "access.json");
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Async, Logs = new() { AccessLogFile = accessLog, AccessLogJson = true } });

        await worker.Middleware.InvokeAsync(Request("/hello"), Answer(200, "hello!"));

        var line = Assert.Single(await AccessLines(accessLog, 1));
        var json = JsonDocument.Parse(line).RootElement;
        Assert.Equal(200, json.GetProperty("http.response.status_code").GetInt32());
        Assert.Equal(6, json.GetProperty("http.response.body.size").GetInt64());
    }

    [Fact]
    public async Task A_recycle_is_asked_once_at_max_requests_after_the_request_is_counted()
    {
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Async, MaxRequests = 3 });
        for (var i = 1; i <= 2; i++)
        {
            await worker.Middleware.InvokeAsync(Request(), Answer());
        }
        Assert.Empty(worker.Reports.Recycles);

        for (var i = 3; i <= 5; i++)
        {
            await worker.Middleware.InvokeAsync(Request(), Answer());
        }

        // Asked after the third request left the gate and was counted as served.
        Assert.Equal(new (string?, long, int)[] { (null, 3, 0) }, worker.Reports.Recycles);
        Assert.Single(ErrorLines(worker), l => l.EndsWith("[INFO] Autorestarting worker after current request.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task After_an_OutOfMemoryException_a_recycle_is_asked_once_with_the_reason()
    {
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Async, MaxRequests = 2 });
        await worker.Middleware.InvokeAsync(Request(), Answer());
        Assert.Empty(worker.Reports.Recycles);

        worker.Reports.OutOfMemorySeen = true;
        for (var i = 0; i < 3; i++)
        {
            await worker.Middleware.InvokeAsync(Request(), Answer(500));
        }

        // Not asked again at --max-requests either: one request is enough.
        Assert.Equal(new (string?, long, int)[] { (Protocol.OutOfMemory, 2, 0) }, worker.Reports.Recycles);
        var lines = ErrorLines(worker);
        Assert.Single(lines, l => l.EndsWith("[WARNING] Worker ran out of memory (OutOfMemoryException): recycling it after current request.", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Autorestarting", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_exception_from_the_app_is_rethrown_and_counted_and_logged_as_500()
    {
        var accessLog = Path.Combine(_dir, "access.log");
        using var statsd = new StatsdClient("unix:" + Path.Combine(_dir, "statsd.sock"), "", null, null, Timeout.InfiniteTimeSpan);
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Gthread, Threads = 1, Logs = new() { AccessLogFile = accessLog, AccessLogFormat = "%(s)s %(b)s" } }, statsd);

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => worker.Middleware.InvokeAsync(Request(), _ => throw new InvalidOperationException("boom")));
        Assert.Equal("boom", thrown.Message);

        Assert.Equal((1L, 0), (worker.Stats.Snapshot().Served, worker.Stats.Snapshot().InFlight));
        Assert.Equal(1, Requests(worker.Reports.Metrics, "GET 5xx"));
        Assert.Equal(["500 0"], await AccessLines(accessLog, 1));
        var lines = statsd.TakeLines();
        Assert.Contains("gunicorn.log.exception:1|c", lines);
        Assert.Contains("gunicorn.request.status.500:1|c", lines);
        // The request's slot was given back (gthread, one thread): the next one gets it at once.
        Assert.True(worker.Gate.EnterRequestAsync().IsCompletedSuccessfully);
        worker.Gate.ExitRequest();
    }

    [Fact]
    public async Task Warm_up_requests_are_neither_counted_nor_logged_but_take_a_request_slot()
    {
        var accessLog = Path.Combine(_dir, "access.log");
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Gthread, Threads = 1, MaxRequests = 1, Logs = new() { AccessLogFile = accessLog, AccessLogFormat = "%(r)s" } });
        worker.Gate.HoldAccepts();
        var warmupRequest = Request("/warm");
        warmupRequest.Features.Set(WarmupConnection.Instance);
        var slotTaken = false;

        await worker.Middleware.InvokeAsync(warmupRequest, context =>
        {
            slotTaken = !worker.Gate.EnterRequestAsync().IsCompleted;
            return Answer()(context);
        });
        Assert.True(slotTaken);
        worker.Gate.ExitRequest(); // the slot the probe above waited for

        Assert.Equal(200, warmupRequest.Response.StatusCode);
        Assert.Equal((0L, 0), (worker.Stats.Snapshot().Served, worker.Stats.Snapshot().InFlight));
        Assert.Equal(0, Requests(worker.Reports.Metrics, "GET 2xx"));
        Assert.Empty(worker.Reports.Recycles);

        // A client's request meanwhile (not sync: served at once) is counted and logged, alone.
        await worker.Middleware.InvokeAsync(Request("/client"), Answer()).WaitAsync(TimeSpan.FromSeconds(5));
        worker.Gate.ReleaseAccepts();
        Assert.Equal(["GET /client HTTP/1.1"], await AccessLines(accessLog, 1));
        Assert.Equal(1, worker.Stats.Snapshot().Served);
        Assert.Single(worker.Reports.Recycles);
    }

    [Fact]
    public async Task Sync_a_client_request_that_arrives_during_the_warm_up_waits_for_its_end()
    {
        var worker = Build(new AgentOptions { WorkerClass = WorkerClass.Sync });
        worker.Gate.HoldAccepts();
        var called = false;
        var request = worker.Middleware.InvokeAsync(Request(), context =>
        {
            called = true;
            return Answer()(context);
        });

        await Task.Delay(100);
        Assert.False(request.IsCompleted);
        Assert.False(called);
        Assert.Equal(0, worker.Stats.InFlight); // not counted while it waits: the warm-up checks for requests in flight

        worker.Gate.ReleaseAccepts();
        await request.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(called);
        Assert.Equal(1, worker.Stats.Snapshot().Served);
    }
}
