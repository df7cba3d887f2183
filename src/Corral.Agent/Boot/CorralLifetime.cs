using Corral.Agent.Admission;
using Microsoft.Extensions.Hosting;

namespace Corral.Agent.Boot;

/// <summary>
/// Reports "ready" once the app has started and Kestrel listens (after the warm-up, with
/// --warmup-requests), and lets the agent stop the app gracefully.
/// </summary>
internal sealed class CorralLifetime(IHostApplicationLifetime lifetime, Warmup? warmup) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        HostControl.StopApplication = lifetime.StopApplication;
        if (warmup is null)
        {
            lifetime.ApplicationStarted.Register(AgentRuntime.ReportReady);
        }
        else
        {
            lifetime.ApplicationStarted.Register(() => Task.Run(async () =>
            {
                await warmup.RunAsync().ConfigureAwait(false);
                AgentRuntime.ReportReady();
            }));
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
