using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Http;

/// <summary>Kestrel's HTTP/2 extended CONNECT (RFC 8441 websockets), with the accepted stream counted and watched: <see cref="LongLivedRequest"/>.</summary>
internal sealed class LongLivedConnectFeature(IHttpExtendedConnectFeature inner, LongLivedRequest request) : IHttpExtendedConnectFeature
{
    public bool IsExtendedConnect => inner.IsExtendedConnect;

    public string? Protocol => inner.Protocol;

    public async ValueTask<Stream> AcceptAsync() => request.Taken(await inner.AcceptAsync().ConfigureAwait(false));
}
