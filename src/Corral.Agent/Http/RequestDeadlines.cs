using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Corral.Agent.Http;

/// <summary>
/// --request-timeout and --request-timeout-grace. Each request's HttpContext.RequestAborted becomes a
/// token linked with a deadline (<see cref="Arm"/>). One dedicated thread (not the thread pool's: a
/// starved pool must not stop it) looks at the running requests every <see cref="Period"/>: at the
/// deadline it fires the token (cooperative apps stop, and the middleware answers their
/// OperationCanceledException with 504); a request whose code still runs a grace later is hung: the
/// master is told (it replaces the worker) and the client is answered 504, or its connection closed
/// if the response had started.
/// </summary>
internal sealed class RequestDeadlines
{
    private const string ProblemType = "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.5";

    private readonly RunningRequests _running;
    private readonly Action<RunningRequest> _reportHung;
    private readonly long _timeoutTicks;
    private readonly long _hungTicks;
    private readonly byte[] _deadlineBody;
    private readonly byte[] _hungBody;
    private readonly List<RunningRequest> _passed = [];
    private readonly List<RunningRequest> _hung = [];
    private int _started;

    /// <param name="timeout">--request-timeout, in seconds (> 0).</param>
    /// <param name="grace">--request-timeout-grace, in seconds.</param>
    /// <param name="reportHung">Tells the master about a hung request (once per request, on the deadlines' thread: must not block).</param>
    public RequestDeadlines(double timeout, double grace, RunningRequests running, Action<RunningRequest> reportHung)
    {
        _running = running;
        _reportHung = reportHung;
        Timeout = TimeSpan.FromSeconds(timeout);
        Grace = TimeSpan.FromSeconds(Math.Max(0, grace));
        _timeoutTicks = (long)(timeout * Stopwatch.Frequency);
        _hungTicks = _timeoutTicks + (long)(Grace.TotalSeconds * Stopwatch.Frequency);
        Period = TimeSpan.FromMilliseconds(Math.Clamp(Math.Min(Timeout.TotalMilliseconds, Math.Max(Grace.TotalMilliseconds, 1)) / 10, 5, 100));
        var seconds = Seconds(timeout);
        _deadlineBody = Problem($"The request ran past --request-timeout ({seconds} s) and was cancelled.");
        _hungBody = Problem($"The request ran past --request-timeout ({seconds} s) and its code still ran {Seconds(Grace.TotalSeconds)} s later: the worker is being replaced.");
    }

    public TimeSpan Timeout { get; }
    public TimeSpan Grace { get; }

    /// <summary>How often the running requests are looked at: a tenth of the shorter of the timeout and the grace, 5 to 100 ms.</summary>
    public TimeSpan Period { get; }

    /// <summary>
    /// Gives the request its deadline: RequestAborted fires at the deadline or when the client goes.
    /// Upgrades (websockets, extended CONNECT) get none: they last as long as their connection.
    /// </summary>
    public void Arm(RunningRequest request)
    {
        var context = request.Context;
        var features = context.Features;
        if (features.Get<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>() is { IsUpgradableRequest: true }
            || features.Get<Microsoft.AspNetCore.Http.Features.IHttpExtendedConnectFeature>() is { IsExtendedConnect: true })
        {
            return;
        }
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            new Thread(Watch) { IsBackground = true, Name = "corral-deadlines" }.Start();
        }
        request.OriginalAborted = context.RequestAborted;
        request.Deadline = CancellationTokenSource.CreateLinkedTokenSource(request.OriginalAborted);
        context.RequestAborted = request.Deadline.Token;
    }

    /// <summary>
    /// The app threw OperationCanceledException after the deadline: a response not started is answered
    /// 504 (problem+json), a started one is cut off. Nothing if a hung request's answer was already sent.
    /// Returns what was done, for the log line; null: nothing.
    /// </summary>
    public async Task<string?> AnswerDeadlineAsync(RunningRequest request)
    {
        if (Interlocked.CompareExchange(ref request.Answer, Answerer.App, Answerer.None) != Answerer.None)
        {
            return null;
        }
        var context = request.Context;
        if (context.Response.HasStarted)
        {
            context.Abort();
            return "its response had started: connection closed";
        }
        await WriteProblemAsync(context, _deadlineBody, close: false).ConfigureAwait(false);
        return "answered 504";
    }

    /// <summary>The log line of a request cancelled at its deadline, once <paramref name="outcome"/> is known.</summary>
    public string Describe(RunningRequest request, string outcome) =>
        $"Request {request.Method} {request.EscapedPath} (request id {request.RequestId}) ran past --request-timeout {Seconds(Timeout.TotalSeconds)} s: cancelled, {outcome}";

    /// <summary>
    /// The request left the app (it is already out of the registry): if a hung request's answer is being
    /// written, waits for it (Kestrel ends the response once the middleware returns); then RequestAborted
    /// is the connection's own again and the deadline's token source is disposed.
    /// </summary>
    public async ValueTask LeaveAsync(RunningRequest request)
    {
        if (Interlocked.CompareExchange(ref request.Answer, Answerer.App, Answerer.None) == Answerer.Deadlines
            && request.HungAnswered is { } answered)
        {
            await answered.Task.ConfigureAwait(false);
        }
        if (request.Deadline is { } deadline)
        {
            request.Context.RequestAborted = request.OriginalAborted;
            deadline.Dispose();
        }
    }

    private void Watch()
    {
        while (true)
        {
            Thread.Sleep(Period);
            try
            {
                Check(Stopwatch.GetTimestamp());
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Never lose the thread that bounds every request.
                AgentRuntime.Log?.Error($"Checking request deadlines failed: {e.Message}");
            }
        }
    }

    /// <summary>One look at the running requests at <paramref name="now"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    internal void Check(long now)
    {
        _running.ForEach((this, now), static (r, s) => s.Item1.Classify(r, s.now));
        foreach (var r in _passed)
        {
            try
            {
                // The app's callbacks run on the thread pool, not on this thread.
                _ = r.Deadline!.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // It ended meanwhile.
            }
        }
        foreach (var r in _hung)
        {
            var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            r.HungAnswered = answered;
            if (Interlocked.CompareExchange(ref r.Answer, Answerer.Deadlines, Answerer.None) != Answerer.None)
            {
                continue; // it has just ended, or its app answered
            }
            _reportHung(r);
            ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.Self.AnswerHungAsync(s.Request, s.Answered), (Self: this, Request: r, Answered: answered), preferLocal: false);
        }
        _passed.Clear();
        _hung.Clear();
    }

    private void Classify(RunningRequest r, long now)
    {
        if (r.Deadline is null)
        {
            return;
        }
        var elapsed = now - r.StartTimestamp;
        if (r.Phase == DeadlinePhase.Running && elapsed >= _timeoutTicks)
        {
            Volatile.Write(ref r.Phase, DeadlinePhase.Passed);
            _passed.Add(r);
        }
        if (r.Phase == DeadlinePhase.Passed && elapsed >= _hungTicks)
        {
            Volatile.Write(ref r.Phase, DeadlinePhase.Hung);
            _hung.Add(r);
        }
    }

    /// <summary>
    /// A hung request's answer, written while its handler still runs on another thread (stuck: it is not
    /// writing). 504 if nothing was sent yet, and the connection closes after it; else the connection is cut.
    /// </summary>
    private async Task AnswerHungAsync(RunningRequest request, TaskCompletionSource answered)
    {
        var context = request.Context;
        try
        {
            if (context.Response.HasStarted)
            {
                context.Abort();
            }
            else
            {
                await WriteProblemAsync(context, _hungBody, close: true).ConfigureAwait(false);
                await context.Response.CompleteAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            try
            {
                context.Abort();
            }
            catch (Exception abort) when (abort is InvalidOperationException or ObjectDisposedException)
            {
            }
        }
        finally
        {
            answered.TrySetResult();
        }
    }

    private static async Task WriteProblemAsync(HttpContext context, byte[] body, bool close)
    {
        var response = context.Response;
        response.Clear(); // what the app set (headers, status) was for an answer it never gave
        response.StatusCode = StatusCodes.Status504GatewayTimeout;
        response.ContentType = "application/problem+json";
        response.ContentLength = body.Length;
        if (close && !HttpProtocol.IsHttp2(context.Request.Protocol) && !HttpProtocol.IsHttp3(context.Request.Protocol))
        {
            response.Headers.Connection = "close";
        }
        await response.Body.WriteAsync(body).ConfigureAwait(false);
    }

    private static byte[] Problem(string detail) => Encoding.UTF8.GetBytes(
        $$"""{"type":"{{ProblemType}}","title":"The request ran past --request-timeout","status":504,"detail":"{{detail}}"}""");

    private static string Seconds(double seconds) => seconds.ToString("0.###", CultureInfo.InvariantCulture);
}
