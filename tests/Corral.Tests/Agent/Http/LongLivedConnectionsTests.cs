using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Corral.Agent.Http;
using Corral.Agent.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Corral.Tests;

/// <summary>
/// When a draining worker may stop its host early: once every request it still runs is a long-lived
/// one of its own. A websocket another worker forwards to it (SignalR across workers) is outside
/// the gate's counts, so it must not stand in for a plain request still running.
/// </summary>
public sealed class LongLivedConnectionsTests
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(500);

    [Fact]
    public async Task A_forwarded_websocket_does_not_let_the_drain_stop_while_a_plain_request_runs()
    {
        var (longLived, gate, stats) = Build();
        stats.Begin(); // a plain request of the worker's own, still running
        await TakeAsync(longLived, admitted: false);
        Assert.Equal(1, longLived.Count);

        using var cts = new CancellationTokenSource(Short);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => longLived.OnlyLongLivedRemainAsync(gate, stats, cts.Token));
    }

    [Fact]
    public async Task The_workers_own_websocket_as_its_only_request_lets_the_drain_stop_at_once()
    {
        var (longLived, gate, stats) = Build();
        stats.Begin(); // the websocket's own request
        await TakeAsync(longLived, admitted: true);

        await longLived.OnlyLongLivedRemainAsync(gate, stats, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
    }

    private static (LongLivedConnections, AdmissionGate, RequestStats) Build()
    {
        var options = new AgentOptions { WorkerClass = WorkerClass.Async, GracefulTimeout = 30 };
        return (new LongLivedConnections(options), AdmissionGate.For(options), new RequestStats());
    }

    /// <summary>A websocket upgrade the app takes.</summary>
    private static async Task TakeAsync(LongLivedConnections longLived, bool admitted)
    {
        var context = new DefaultHttpContext();
        context.Request.Headers.Upgrade = "websocket";
        context.Features.Set<IHttpUpgradeFeature>(new Upgradable());
        Assert.NotNull(longLived.Watch(context, admitted));
        await context.Features.Get<IHttpUpgradeFeature>()!.UpgradeAsync();
    }

    private sealed class Upgradable : IHttpUpgradeFeature
    {
        public bool IsUpgradableRequest => true;

        public Task<Stream> UpgradeAsync() => Task.FromResult<Stream>(new MemoryStream());
    }
}
