using System.Diagnostics;
using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Corral.Agent.Http.Affinity;
using Corral.Agent.Logging;
using Corral.Agent.Metrics;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Http;

/// <summary>
/// The outermost middleware: counts requests (served, in flight), applies the worker class's
/// per-request rules, enforces --limit-request-field_size, bounds each request by --request-timeout
/// (<see cref="RequestDeadlines"/>), writes the access log, and asks for a recycle at --max-requests or
/// once the app has thrown OutOfMemoryException.
/// </summary>
internal sealed class CorralMiddleware
{
    private readonly AgentOptions _options;
    private readonly AdmissionGate _gate;
    private readonly RequestStats _stats;
    private readonly AccessLogFormat? _accessFormat;
    private readonly AccessLogWriter? _accessWriter;
    private readonly bool _closeEveryConnection;
    private readonly ProxyTrust _proxyTrust;
    private readonly IWorkerReports _reports;
    private readonly AffinityRouter? _affinity;
    private readonly LongLivedConnections? _longLived;
    private readonly RunningRequests? _running;
    private readonly RequestDeadlines? _deadlines;
    private int _recycleAsked;

    /// <param name="running">
    /// Where the requests running now are kept (see <see cref="Running"/>). Null: one of its own if
    /// --request-timeout is set, else none (nothing is kept, nothing allocated per request).
    /// </param>
    public CorralMiddleware(AgentOptions options, AdmissionGate gate, RequestStats stats, IWorkerReports reports, AffinityRouter? affinity = null, LongLivedConnections? longLived = null, RunningRequests? running = null)
    {
        _running = running ?? (options.RequestTimeout > 0 ? new RunningRequests() : null);
        if (options.RequestTimeout > 0)
        {
            _deadlines = new RequestDeadlines(options.RequestTimeout, options.RequestTimeoutGrace, _running!,
                r => reports.ReportHung(new HungRequest(r.OsThreadId, r.Method, r.EscapedPath, r.RequestId)));
        }
        _affinity = affinity;
        _longLived = longLived;
        _options = options;
        _gate = gate;
        _stats = stats;
        _reports = reports;
        _closeEveryConnection = WorkerClassPolicy.For(options.WorkerClass).ClosesEveryConnection;
        _proxyTrust = ProxyTrust.Create(options.Proxy.ForwardedAllowIps, options.Proxy.SecureSchemeHeaders);
        if (!string.IsNullOrEmpty(options.Logs.AccessLogFile))
        {
            // --access-log-json: the JSON line's fields are fixed; --access-logformat is not used.
            _accessFormat = options.Logs.AccessLogJson ? null : AccessLogFormat.Parse(string.IsNullOrEmpty(options.Logs.AccessLogFormat) ? AccessLogFormat.GunicornDefault : options.Logs.AccessLogFormat);
            _accessWriter = new AccessLogWriter(options.Logs.AccessLogFile);
        }
    }

    /// <summary>The requests the app runs now (method, path, request id, since when, on which thread); null when none are kept.</summary>
    internal RunningRequests? Running => _running;

    /// <summary>--request-timeout's deadlines; null without one.</summary>
    internal RequestDeadlines? Deadlines => _deadlines;

    /// <summary>
    /// One request, in order: a warm-up request only passes through; any other is counted and
    /// admitted, then refused (400, 431) or handed to the app; whatever happened, it then leaves the
    /// gate, is recorded, counted as served, logged, and the worker asks for its recycle when due.
    /// </summary>
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        // Forwarded by another worker (SignalR across workers): that worker admits, counts and logs it.
        if (_affinity?.IsHop(context) == true)
        {
            // Its upgrade is this worker's to close gracefully when it drains, as if served directly.
            var hopLongLived = _longLived?.Watch(context, admitted: false);
            try
            {
                await _affinity.ServeHopAsync(context, next).ConfigureAwait(false);
            }
            finally
            {
                if (hopLongLived is not null)
                {
                    await hopLongLived.EndAsync().ConfigureAwait(false);
                }
            }
            return;
        }
        var started = Stopwatch.GetTimestamp();
        var startTime = _accessWriter is null ? default : DateTimeOffset.Now;
        if (_gate.AcceptsHeld is { } warmupOver)
        {
            if (context.Features.Get<WarmupConnection>() is not null)
            {
                await PassWarmupAsync(context, next).ConfigureAwait(false);
                return;
            }
            await WaitForWarmupAsync(warmupOver).ConfigureAwait(false);
        }
        await AdmitAsync(context).ConfigureAwait(false);
        CountingBody? counter = null;
        LongLivedRequest? longLived = null;
        RunningRequest? running = null;
        var status = 0; // 500 once the app has thrown
        try
        {
            if (_proxyTrust.Apply(context) is { } proxyError)
            {
                // Before anything reads the remote address or the scheme (the app, the access log).
                await RefuseAsync(context, StatusCodes.Status400BadRequest, proxyError, close: false).ConfigureAwait(false);
                return;
            }
            CloseIfLastRequest(context);
            counter = _accessWriter is null ? null : CountingBody.Install(context);
            if (FieldTooLarge(context.Request.Headers) is { } field)
            {
                // As Kestrel's own 431: nothing more is read from this client.
                await RefuseAsync(context, StatusCodes.Status431RequestHeaderFieldsTooLarge,
                    $"Request header field '{field}' is larger than --limit-request-field_size ({_options.Limits.RequestFieldSize} bytes)", close: true).ConfigureAwait(false);
                return;
            }
            if (_running is not null)
            {
                // Kept while the app runs it; --request-timeout's deadline (not for an upgrade: armed
                // before Watch replaces the upgrade feature).
                running = _running.Add(context);
                _deadlines?.Arm(running);
            }
            // Upgrades served here: counted and closed gracefully when the worker stops. One relayed to
            // another worker is that worker's to close; the relay ends with 1001 when this one drains.
            longLived = _affinity?.Forwards(context.Request) == true ? null : _longLived?.Watch(context);
            await (_affinity is null ? next(context) : _affinity.InvokeAsync(context, next)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (running is { DeadlinePassed: true } && !running.OriginalAborted.IsCancellationRequested)
        {
            // The app stopped because its deadline fired (not because the client went): 504, not 500.
            status = StatusCodes.Status504GatewayTimeout;
            if (await _deadlines!.AnswerDeadlineAsync(running).ConfigureAwait(false) is { } outcome)
            {
                _reports.Log.Warning(_deadlines.Describe(running, outcome));
            }
        }
        catch
        {
            status = StatusCodes.Status500InternalServerError;
            // Gunicorn logs "Error handling request" with log.exception: counted the same way.
            _reports.Statsd?.Increment(StatsdMetrics.LogException);
            throw;
        }
        finally
        {
            if (running is not null)
            {
                _running!.Remove(running);
                if (_deadlines is not null)
                {
                    await _deadlines.LeaveAsync(running).ConfigureAwait(false);
                }
            }
            if (longLived is not null)
            {
                await longLived.EndAsync().ConfigureAwait(false);
            }
            _gate.ExitRequest();
            var elapsed = Stopwatch.GetElapsedTime(started);
            var finalStatus = status != 0 && !context.Response.HasStarted ? status : context.Response.StatusCode;
            Record(context.Request.Method, finalStatus, elapsed);
            var served = _stats.End();
            if (_accessWriter is not null)
            {
                WriteAccessLog(_accessWriter, context, startTime, elapsed, finalStatus, counter);
            }
            RecycleIfDue(served);
        }
    }

    /// <summary>
    /// A warm-up request (<see cref="Warmup"/>) is not the clients': no count, no log, no
    /// --max-requests. It takes a request slot all the same (gthread).
    /// </summary>
    private async Task PassWarmupAsync(HttpContext context, RequestDelegate next)
    {
        await _gate.EnterRequestAsync().ConfigureAwait(false);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            _gate.ExitRequest();
        }
    }

    /// <summary>
    /// sync: a connection its accept took as the warm-up began waits for the warm-up (one request at
    /// a time). The other classes serve it at once.
    /// </summary>
    private Task WaitForWarmupAsync(Task warmupOver) => _closeEveryConnection ? warmupOver : Task.CompletedTask;

    /// <summary>
    /// Counted in flight from now, then waits for a request slot (sync: the worker's turn). sync: the
    /// busy clock (--timeout) starts again once the request runs.
    /// </summary>
    private async ValueTask AdmitAsync(HttpContext context)
    {
        _stats.Begin();
        await _gate.EnterRequestAsync(context).ConfigureAwait(false);
        if (_gate.OneRequestAtATime)
        {
            _stats.Running();
        }
    }

    /// <summary>
    /// The sync class: one request per connection, as Gunicorn's sync worker. A draining worker: this
    /// request is the connection's last, and the client is told so. Over HTTP/2 (gRPC keeps one
    /// connection and sends every call on it), a draining worker asks Kestrel to close the connection
    /// gracefully: GOAWAY, the streams under way finish, and the client opens a new connection, which
    /// a new worker accepts. Otherwise the connection would stay until --graceful-timeout, and its
    /// close at the host's stop would race the client's next calls.
    /// </summary>
    private void CloseIfLastRequest(HttpContext context)
    {
        if (IsHttp1(context))
        {
            if (_closeEveryConnection || _gate.Draining)
            {
                context.Response.Headers.Connection = "close";
            }
        }
        else if (_gate.Draining)
        {
            context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
        }
    }

    /// <summary>Answers <paramref name="status"/> with <paramref name="text"/> (plain text) instead of the app.</summary>
    private static async Task RefuseAsync(HttpContext context, int status, string text, bool close)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain";
        if (close)
        {
            CloseAfterResponse(context);
        }
        await context.Response.WriteAsync(text + "\n").ConfigureAwait(false);
    }

    /// <summary>The worker's metrics for the master, and statsd's (--statsd-host).</summary>
    private void Record(string method, int status, TimeSpan elapsed)
    {
        _reports.Metrics.Record(method, status, elapsed);
        _reports.Statsd?.Request(status, elapsed);
    }

    /// <summary>
    /// Asks the master, once, to replace this worker (overlapped): after the app has thrown
    /// OutOfMemoryException, or at --max-requests.
    /// </summary>
    private void RecycleIfDue(long served)
    {
        if (_reports.OutOfMemorySeen && Interlocked.Exchange(ref _recycleAsked, 1) == 0)
        {
            // A worker whose heap is exhausted would answer 500 for ever: it is replaced, overlapped.
            _reports.Log.Warning("Worker ran out of memory (OutOfMemoryException): recycling it after current request.");
            _reports.AskRecycle(Protocol.OutOfMemory);
        }
        else if (_options.MaxRequests > 0 && served >= _options.MaxRequests && Interlocked.Exchange(ref _recycleAsked, 1) == 0)
        {
            _reports.Log.Info("Autorestarting worker after current request.");
            _reports.AskRecycle(null);
        }
    }

    private static bool IsHttp1(HttpContext context) =>
        !HttpProtocol.IsHttp2(context.Request.Protocol) && !HttpProtocol.IsHttp3(context.Request.Protocol);

    /// <summary>HTTP/1.x: `Connection: close`, and Kestrel closes the connection after this response.</summary>
    private static void CloseAfterResponse(HttpContext context)
    {
        if (IsHttp1(context))
        {
            context.Response.Headers.Connection = "close";
        }
    }

    /// <summary>--limit-request-field_size: the first field whose "name: value" is longer; null if none.</summary>
    private string? FieldTooLarge(IHeaderDictionary headers)
    {
        var limit = _options.Limits.RequestFieldSize;
        if (limit <= 0)
        {
            return null;
        }
        foreach (var (name, values) in headers)
        {
            foreach (var value in values)
            {
                if (name.Length + 2 + (value?.Length ?? 0) > limit)
                {
                    return name;
                }
            }
        }
        return null;
    }

    /// <summary>The request's access-log line: --access-logformat's atoms, or --access-log-json's object.</summary>
    private void WriteAccessLog(AccessLogWriter writer, HttpContext context, DateTimeOffset startTime, TimeSpan duration, int status, CountingBody? counter)
    {
        var request = context.Request;
        var response = context.Response;
        var requestFeature = context.Features.Get<IHttpRequestFeature>();
        var entry = new AccessLogEntry
        {
            Start = startTime,
            Duration = duration,
            RemoteAddress = context.Connection.RemoteIpAddress?.ToString(),
            Method = request.Method,
            RawTarget = requestFeature?.RawTarget ?? (request.Path + request.QueryString).ToString(),
            Path = request.PathBase.Add(request.Path).Value ?? "/", // decoded, as Gunicorn logs PATH_INFO
            QueryString = request.QueryString.ToString(),
            Protocol = request.Protocol,
            Status = status,
            BytesSent = counter?.Count ?? 0,
            RequestHeader = name => request.Headers.TryGetValue(name, out var v) ? v.ToString() : null,
            ResponseHeader = name => response.Headers.TryGetValue(name, out var v) ? v.ToString() : null,
            RequestHeaderValues = _accessFormat is null ? name => request.Headers.TryGetValue(name, out var v) ? v.ToArray() : null : null,
            Scheme = request.Scheme,
        };
        writer.Write(_accessFormat is null ? JsonAccessLog.Format(entry) : _accessFormat.Format(entry));
    }
}
