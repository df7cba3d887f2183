using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Http;

/// <summary>Kestrel's HTTP/1.1 upgrade, with the upgraded connection counted and (a websocket) watched: <see cref="LongLivedRequest"/>.</summary>
internal sealed class LongLivedUpgradeFeature(IHttpUpgradeFeature inner, LongLivedRequest request) : IHttpUpgradeFeature
{
    public bool IsUpgradableRequest => inner.IsUpgradableRequest;

    public async Task<Stream> UpgradeAsync() => request.Taken(await inner.UpgradeAsync().ConfigureAwait(false));
}
