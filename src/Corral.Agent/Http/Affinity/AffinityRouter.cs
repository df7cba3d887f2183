using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace Corral.Agent.Http.Affinity;

/// <summary>
/// SignalR (and Blazor Server) across workers. A connection's negotiate and its transport requests
/// (the websocket, the long polls, the sends, the event stream) must reach the one worker that holds
/// it, but each TCP connection may land on any worker. So each worker marks the connection tokens it
/// issues with its pid (<see cref="NegotiateRewrite"/>), and a request whose "id" names another worker
/// is forwarded to that one over its private socket (<see cref="WorkerForwarder"/>); one that names
/// this worker has the mark taken out and is served here. Every other request pays
/// <see cref="AffinityQuery.MayCarry"/> and one method check.
/// </summary>
internal sealed class AffinityRouter
{
    private readonly int _pid = Environment.ProcessId;
    private readonly WorkerForwarder _forwarder;

    private AffinityRouter(WorkerForwarder forwarder) => _forwarder = forwarder;

    /// <summary>The router when the master gave an affinity folder (<see cref="AgentOptions.AffinityDir"/>); null otherwise.</summary>
    public static AffinityRouter? For(AgentOptions options, AdmissionGate gate, IHostApplicationLifetime lifetime)
    {
        if (string.IsNullOrEmpty(options.AffinityDir))
        {
            return null;
        }
        // A relay ends when its worker drains or stops, so that its client reconnects elsewhere.
        var stopping = CancellationTokenSource.CreateLinkedTokenSource(gate.DrainToken, lifetime.ApplicationStopping);
        return new AffinityRouter(new WorkerForwarder(options.AffinityDir, stopping.Token));
    }

    /// <summary>A request another worker forwarded here: it came in on the private socket, marked.</summary>
    public bool IsHop(HttpContext context) =>
        AffinityQuery.MayCarry(context.Request.QueryString.Value) && context.Features.Get<HopConnection>() is not null;

    /// <summary>
    /// A request another worker forwarded here (<see cref="IsHop"/>): served at once, as the client
    /// it carries, and not admitted, counted or logged again (the forwarding worker did all that).
    /// </summary>
    public Task ServeHopAsync(HttpContext context, RequestDelegate next)
    {
        var query = context.Request.QueryString.Value!;
        if (!AffinityQuery.TryFind(query, out var pid, out var stripped) || pid != _pid)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }
        context.Request.QueryString = new QueryString(stripped);
        HopConnection.Apply(context);
        return next(context);
    }

    /// <summary>The request names another worker: <see cref="InvokeAsync"/> forwards it there.</summary>
    public bool Forwards(HttpRequest request)
    {
        var query = request.QueryString.Value;
        return AffinityQuery.MayCarry(query) && AffinityQuery.TryFind(query!, out var pid, out _) && pid != _pid;
    }

    /// <summary>An admitted request: a negotiate is marked, a marked request is served here or forwarded, the rest go on.</summary>
    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (HttpMethods.IsPost(request.Method) && request.Path.Value is { } path && path.EndsWith("/negotiate", StringComparison.OrdinalIgnoreCase))
        {
            return MarkNegotiateAsync(context, next);
        }
        var query = request.QueryString.Value;
        if (AffinityQuery.MayCarry(query) && AffinityQuery.TryFind(query!, out var pid, out var stripped))
        {
            if (pid != _pid)
            {
                return _forwarder.ForwardAsync(context, pid);
            }
            request.QueryString = new QueryString(stripped);
        }
        return next(context);
    }

    /// <summary>Holds the negotiate response (small JSON) to mark its token; any other answer passes unchanged.</summary>
    private async Task MarkNegotiateAsync(HttpContext context, RequestDelegate next)
    {
        var response = context.Response;
        var original = response.Body;
        using var buffer = new MemoryStream();
        response.Body = buffer;
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            response.Body = original;
        }
        var body = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        if (!response.HasStarted && response.StatusCode == StatusCodes.Status200OK && NegotiateRewrite.Rewrite(body.Span, _pid) is { } marked)
        {
            response.ContentLength = marked.Length;
            body = marked;
        }
        if (body.Length > 0)
        {
            await original.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
        }
    }
}
