using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace Corral.Agent.Http;

/// <summary>Puts <see cref="CorralMiddleware"/> in front of everything the app configures.</summary>
internal sealed class CorralStartupFilter(CorralMiddleware middleware) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(middleware.InvokeAsync);
        next(app);
    };
}
