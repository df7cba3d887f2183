using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Http;

/// <summary>
/// A request that may become long-lived: an HTTP/1.1 upgrade or an HTTP/2 extended CONNECT
/// (websockets over HTTP/2). Once the app takes the connection (upgrade, accept), it is counted
/// as long-lived until the request ends; a websocket's stream is a <see cref="WebSocketFrameStream"/>,
/// through which Corral can say "going away" when the worker stops.
/// </summary>
internal sealed class LongLivedRequest(LongLivedConnections owner, HttpContext context, bool webSocket, bool admitted)
{
    /// <summary>
    /// It came in on one of the worker's own connections (admitted and counted by the gate), not
    /// forwarded by another worker over its private socket (SignalR across workers).
    /// </summary>
    public bool Admitted => admitted;

    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _taken;
    private IHttpRequestLifetimeFeature? _lifetime;
    private volatile bool _abortHeld;

    /// <summary>The websocket's stream, once the app has accepted it; null otherwise.</summary>
    public WebSocketFrameStream? WebSocket { get; private set; }

    /// <summary>The app took the connection: from now on it is long-lived.</summary>
    public Stream Taken(Stream stream)
    {
        if (Interlocked.Exchange(ref _taken, 1) != 0)
        {
            return stream;
        }
        if (webSocket)
        {
            stream = WebSocket = new WebSocketFrameStream(stream, () => owner.Stopping);
            if (context.Features.Get<IHttpRequestLifetimeFeature>() is { } lifetime)
            {
                _lifetime = lifetime;
                context.Features.Set<IHttpRequestLifetimeFeature>(new LongLivedLifetimeFeature(lifetime, this));
            }
        }
        owner.Add(this);
        return stream;
    }

    /// <summary>
    /// True if the app's abort of the connection waits: the host stops and no close frame has gone
    /// out, so Corral closes the websocket first (<see cref="EndAsync"/>).
    /// </summary>
    public bool HoldAbort()
    {
        if (owner.Stopping && WebSocket is { CloseSent: false })
        {
            _abortHeld = true;
            return true;
        }
        return false;
    }

    /// <summary>
    /// The request is over (the middleware's finally): a websocket the app dropped without a close
    /// while the host stops is closed by Corral first (<see cref="WebSocketFrameStream.CloseAbandonedAsync"/>);
    /// then the connection is no longer the app's.
    /// </summary>
    public async ValueTask EndAsync()
    {
        var closed = false;
        try
        {
            if (WebSocket is { } ws)
            {
                closed = await ws.CloseAbandonedAsync(owner.Handshake).ConfigureAwait(false);
            }
        }
        finally
        {
            // Closed cleanly: the connection ends as after any close, not reset under the client.
            if (_abortHeld && !closed)
            {
                _lifetime?.Abort();
            }
            _ended.TrySetResult();
            if (Volatile.Read(ref _taken) != 0)
            {
                owner.Remove(this);
            }
        }
    }

    /// <summary>
    /// The worker stops: a websocket the app has not closed gets 1001 "going away"; then the close
    /// handshake (the client answers, the app's receive sees it and its handler returns) has
    /// <paramref name="handshake"/> to end the request, after which the connection is aborted, as
    /// Kestrel would at the host's shutdown timeout. True if Corral sent the close frame.
    /// Other upgrades (not websockets) are left to the app and to Kestrel.
    /// </summary>
    public async Task<bool> GoAwayAsync(TimeSpan handshake)
    {
        if (WebSocket is not { } ws)
        {
            return false;
        }
        using var limit = new CancellationTokenSource(handshake);
        var sent = await ws.SendGoingAwayAsync(limit.Token).ConfigureAwait(false);
        try
        {
            await _ended.Task.WaitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            if (_lifetime is { } lifetime)
            {
                lifetime.Abort();
            }
            else
            {
                context.Abort();
            }
        }
        return sent;
    }
}
