using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Http;

/// <summary>
/// A websocket request's abort, held back while the host stops and no close frame has gone out:
/// ASP.NET Core's websocket aborts the connection when the app drops the websocket unclosed (SignalR
/// on ApplicationStopping), which the client would see as an abnormal closure. Corral first closes
/// it (<see cref="LongLivedRequest.EndAsync"/>), then aborts.
/// </summary>
internal sealed class LongLivedLifetimeFeature(IHttpRequestLifetimeFeature inner, LongLivedRequest request) : IHttpRequestLifetimeFeature
{
    public CancellationToken RequestAborted
    {
        get => inner.RequestAborted;
        set => inner.RequestAborted = value;
    }

    public void Abort()
    {
        if (!request.HoldAbort())
        {
            inner.Abort();
        }
    }
}
