using System.Diagnostics;
using Corral.Agent.Os;
using Microsoft.AspNetCore.Http;

namespace Corral.Agent.Http;

/// <summary>
/// The requests a worker's app is running now: method, path, request id, when each started and the OS
/// thread that entered its handler. <see cref="CorralMiddleware"/> adds each request as it enters the
/// app and removes it as it leaves (only while something needs them: --request-timeout, or a registry
/// handed to the middleware); <see cref="List"/> names them (a hung or starved worker's evidence), and
/// <see cref="RequestDeadlines"/> walks them for their deadlines. A doubly linked list under one lock:
/// adding and removing allocate nothing beyond the entry.
/// </summary>
internal sealed class RunningRequests
{
    private readonly Lock _lock = new();
    private RunningRequest? _first;
    private RunningRequest? _last;
    private int _count;

    /// <summary>How many requests run now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>The request on <paramref name="context"/> enters the app now, on this thread.</summary>
    public RunningRequest Add(HttpContext context)
    {
        var request = new RunningRequest(context, Stopwatch.GetTimestamp(), ThreadIds.Current);
        lock (_lock)
        {
            request.Previous = _last;
            if (_last is null)
            {
                _first = request;
            }
            else
            {
                _last.Next = request;
            }
            _last = request;
            _count++;
        }
        return request;
    }

    /// <summary>The request has left the app (once; removing it again does nothing).</summary>
    public void Remove(RunningRequest request)
    {
        lock (_lock)
        {
            if (!request.Listed)
            {
                return;
            }
            if (request.Previous is null)
            {
                _first = request.Next;
            }
            else
            {
                request.Previous.Next = request.Next;
            }
            if (request.Next is null)
            {
                _last = request.Previous;
            }
            else
            {
                request.Next.Previous = request.Previous;
            }
            request.Previous = request.Next = null;
            request.Listed = false;
            _count--;
        }
    }

    /// <summary>What runs now, the oldest first: a copy, safe to keep.</summary>
    public IReadOnlyList<RunningRequestInfo> List()
    {
        var now = Stopwatch.GetTimestamp();
        var list = new List<RunningRequestInfo>();
        lock (_lock)
        {
            for (var r = _first; r is not null; r = r.Next)
            {
                list.Add(r.Describe(now));
            }
        }
        return list;
    }

    /// <summary>
    /// What runs now in one line, for a starvation report: each endpoint (method and path) with how many
    /// requests run it and the oldest one's age, the most requests first, at most five; null when none run.
    /// </summary>
    public string? Summary()
    {
        var list = List();
        if (list.Count == 0)
        {
            return null;
        }
        var groups = list.GroupBy(r => r.Method + " " + r.Path)
            .Select(g => (Name: g.Key, Count: g.Count(), Oldest: g.Max(r => r.Elapsed)))
            .OrderByDescending(g => g.Count).ThenByDescending(g => g.Oldest).ToList();
        var text = string.Join(", ", groups.Take(5).Select(g =>
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{g.Name} x{g.Count} (oldest {g.Oldest.TotalSeconds:0.0} s)")));
        return groups.Count > 5 ? $"{text}, and {groups.Count - 5} more" : text;
    }

    /// <summary>Calls <paramref name="visit"/> on each running request, oldest first, under the registry's lock: it must be quick and must not add or remove.</summary>
    internal void ForEach<TState>(TState state, Action<RunningRequest, TState> visit)
    {
        lock (_lock)
        {
            for (var r = _first; r is not null; r = r.Next)
            {
                visit(r, state);
            }
        }
    }
}

/// <summary>One running request as <see cref="RunningRequests.List"/> names it.</summary>
/// <param name="Path">The request's path as it came (PathBase + Path, decoded).</param>
/// <param name="OsThreadId">The OS thread id (gettid) of the thread that entered the handler: a synchronous hang keeps it.</param>
internal readonly record struct RunningRequestInfo(string Method, string Path, string RequestId, TimeSpan Elapsed, int OsThreadId);

/// <summary>
/// One request in <see cref="RunningRequests"/>. Its strings are taken as it enters (the context is
/// pooled by Kestrel and reused once the request ends). Its deadline state is <see cref="RequestDeadlines"/>'.
/// </summary>
internal sealed class RunningRequest(HttpContext context, long startTimestamp, int osThreadId)
{
    public HttpContext Context { get; } = context;
    public string Method { get; } = context.Request.Method;
    public PathString PathBase { get; } = context.Request.PathBase;
    public PathString Path { get; } = context.Request.Path;
    public string RequestId { get; } = context.TraceIdentifier;

    /// <summary>When it entered the app (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public long StartTimestamp { get; } = startTimestamp;

    /// <summary>The OS thread id of the thread that entered the handler.</summary>
    public int OsThreadId { get; } = osThreadId;

    internal RunningRequest? Previous { get; set; }
    internal RunningRequest? Next { get; set; }
    internal bool Listed { get; set; } = true;

    /// <summary><see cref="RequestDeadlines"/>' state: where the request stands against its deadline (<see cref="DeadlinePhase"/>).</summary>
    internal int Phase;

    /// <summary>Who answers the client once the deadline has passed (<see cref="Answerer"/>).</summary>
    internal int Answer;

    /// <summary>The deadline's token source (linked with the connection's RequestAborted); null without --request-timeout.</summary>
    internal CancellationTokenSource? Deadline { get; set; }

    /// <summary>The connection's own RequestAborted, put back as the request ends.</summary>
    internal CancellationToken OriginalAborted { get; set; }

    /// <summary>Completes once <see cref="RequestDeadlines"/> has answered a hung request (the middleware waits for it before it returns).</summary>
    internal TaskCompletionSource? HungAnswered { get; set; }

    public bool DeadlinePassed => Volatile.Read(ref Phase) >= DeadlinePhase.Passed;

    /// <summary>The path as one URL-escaped word (PathBase + Path), "/" when empty.</summary>
    public string EscapedPath => PathBase.Add(Path).ToUriComponent() is { Length: > 0 } p ? p : "/";

    public RunningRequestInfo Describe(long now) =>
        new(Method, PathBase.Add(Path).Value is { Length: > 0 } p ? p : "/", RequestId, Stopwatch.GetElapsedTime(StartTimestamp, now), OsThreadId);
}

/// <summary>Values of <see cref="RunningRequest.Phase"/>: running, past its deadline (token fired), hung (past the grace, reported).</summary>
internal static class DeadlinePhase
{
    public const int Running = 0, Passed = 1, Hung = 2;
}

/// <summary>Values of <see cref="RunningRequest.Answer"/>: nobody yet, the app's own code (it returned or threw), or <see cref="RequestDeadlines"/> for a hung request.</summary>
internal static class Answerer
{
    public const int None = 0, App = 1, Deadlines = 2;
}

/// <summary>The OS thread id (gettid(2)) of the calling thread, cached per thread.</summary>
internal static class ThreadIds
{
    [ThreadStatic]
    private static int t_id;

    public static int Current
    {
        get
        {
            var id = t_id;
            if (id == 0)
            {
                t_id = id = Native.GetTid();
            }
            return id;
        }
    }
}
