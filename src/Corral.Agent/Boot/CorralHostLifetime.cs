using System.Runtime.InteropServices;
using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Corral.Agent.Http;
using Corral.Agent.Metrics;
using Corral.Agent.Os;
using Microsoft.Extensions.Hosting;

namespace Corral.Agent.Boot;

/// <summary>
/// The host's lifetime under corral. The console lifetime would stop Kestrel at once on SIGTERM,
/// closing idle keep-alive connections under clients that are about to reuse them. Instead, TERM
/// drains: no new connection, `Connection: close` on every response so each client leaves after its
/// current request, and the app stops once the connections are gone (idle ones close at
/// --keep-alive) or --graceful-timeout has passed, or once only long-lived connections (websockets)
/// remain: those close on the host's stopping signal (<see cref="LongLivedConnections"/>). INT and
/// QUIT stay immediate (AgentRuntime).
/// </summary>
internal sealed class CorralHostLifetime(IHostApplicationLifetime lifetime, AdmissionGate gate, AgentOptions options, LongLivedConnections longLived, RequestStats stats)
    : IHostLifetime, IDisposable
{
    private PosixSignalRegistration? _term;

    public Task WaitForStartAsync(CancellationToken cancellationToken)
    {
        _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            _ = DrainAsync();
        });
        HostControl.Drain = () => _ = DrainAsync();
        longLived.Attach(lifetime.ApplicationStopping);
        return Task.CompletedTask;
    }

    private async Task DrainAsync()
    {
        var drained = gate.BeginDrainAsync();
        // Kestrel keeps its copies of the listening sockets open until it has stopped: let go of them
        // now. With a live master nothing changes (it holds them); an orphan's (the master was killed)
        // were the last ones, and the port is free for a new corral while this one drains.
        foreach (var fd in options.ListenFds)
        {
            Native.ReleaseListeningSocket(fd);
        }
        var limit = TimeSpan.FromSeconds(Math.Max(0, options.GracefulTimeout));
        using var waiting = new CancellationTokenSource();
        var onlyLongLived = longLived.OnlyLongLivedRemainAsync(gate, stats, waiting.Token);
        await Task.WhenAny(drained, onlyLongLived, Task.Delay(limit, waiting.Token)).ConfigureAwait(false);
        await waiting.CancelAsync().ConfigureAwait(false);
        lifetime.StopApplication();
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _term?.Dispose();
}
