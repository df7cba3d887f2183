using Corral.Agent.Boot;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Corral.Agent.Http;

/// <summary>
/// Runs while the app's pipeline is built, after the host has copied the app's URLs into the server's
/// addresses and before Kestrel starts: takes them away (<see cref="EndpointTakeover.TakeServerAddresses"/>),
/// and has what the worker tells the master, with "ready", about what its listeners speak and what
/// they replaced.
/// </summary>
internal sealed class AppUrlsFilter(EndpointTakeover takeover) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        takeover.TakeServerAddresses(app.ServerFeatures.Get<IServerAddressesFeature>());
        AgentRuntime.Serving = takeover.Report;
        next(app);
    };
}
