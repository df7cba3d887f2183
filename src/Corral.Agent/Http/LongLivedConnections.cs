using System.Collections.Concurrent;
using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Corral.Agent.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Http;

/// <summary>
/// The worker's long-lived connections: upgraded ones (websockets over HTTP/1.1 or HTTP/2, other
/// upgrades), which the outermost middleware sees being taken. A draining worker (HUP, recycling,
/// TERM) waits for its connections to close; these never close on their own, so once only they
/// remain, the worker fires the host's stopping signal at once (not at --graceful-timeout):
/// SignalR closes its connections on it (close frame 1000: its clients reconnect), and so do
/// handlers that watch ApplicationStopping. A websocket still open <see cref="Grace"/> later gets
/// a close frame from Corral, 1001 "going away", and its close handshake
/// <see cref="Handshake"/> to end; then its connection is aborted. SIGKILL at --graceful-timeout
/// stays the last resort. Plain long requests (server-sent events, long polling) are not counted:
/// they are requests in flight, which the drain waits for until --graceful-timeout.
/// </summary>
internal sealed class LongLivedConnections(AgentOptions options)
{
    /// <summary>How often a draining worker looks whether only long-lived connections remain.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    private readonly ConcurrentDictionary<LongLivedRequest, byte> _open = new();
    private CancellationToken _stoppingToken;
    private int _stopping;

    /// <summary>The host's stopping signal has fired (true already while its callbacks run: SignalR's, which may run before ours).</summary>
    public bool Stopping => _stoppingToken.IsCancellationRequested;

    /// <summary>Once the host runs: its stopping signal (ApplicationStopping) starts <see cref="OnStopping"/>.</summary>
    public void Attach(CancellationToken applicationStopping)
    {
        _stoppingToken = applicationStopping;
        applicationStopping.Register(OnStopping);
    }

    /// <summary>After the stopping signal, how long the app has to close its websockets itself (at most 1 s, a third of --graceful-timeout).</summary>
    public TimeSpan Grace => Bounded(TimeSpan.FromSeconds(1));

    /// <summary>After Corral's close frame, how long the close handshake has before the connection is aborted (at most 5 s, a third of --graceful-timeout).</summary>
    public TimeSpan Handshake => Bounded(TimeSpan.FromSeconds(5));

    private TimeSpan Bounded(TimeSpan most) => TimeSpan.FromSeconds(Math.Min(most.TotalSeconds, Math.Max(0, options.GracefulTimeout) / 3));

    /// <summary>Upgraded connections open now.</summary>
    public int Count => _open.Count;

    /// <summary>Those of <see cref="Count"/> on the worker's own connections (not forwarded to it by another worker).</summary>
    private int AdmittedCount => _open.Keys.Count(r => r.Admitted);

    /// <summary>
    /// A request that may take its connection (an upgrade, an extended CONNECT) gets features that
    /// count it once taken; null for any other request (nothing changes for them). Not
    /// <paramref name="admitted"/>: forwarded here by another worker, outside the gate's counts.
    /// </summary>
    public LongLivedRequest? Watch(HttpContext context, bool admitted = true)
    {
        var features = context.Features;
        if (features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } upgrade)
        {
            var webSocket = string.Equals(context.Request.Headers.Upgrade, "websocket", StringComparison.OrdinalIgnoreCase);
            var request = new LongLivedRequest(this, context, webSocket, admitted);
            features.Set<IHttpUpgradeFeature>(new LongLivedUpgradeFeature(upgrade, request));
            return request;
        }
        if (features.Get<IHttpExtendedConnectFeature>() is { IsExtendedConnect: true } connect)
        {
            var request = new LongLivedRequest(this, context, string.Equals(connect.Protocol, "websocket", StringComparison.OrdinalIgnoreCase), admitted);
            features.Set<IHttpExtendedConnectFeature>(new LongLivedConnectFeature(connect, request));
            return request;
        }
        return null;
    }

    internal void Add(LongLivedRequest request)
    {
        _open.TryAdd(request, 0);
        if (Volatile.Read(ref _stopping) != 0)
        {
            // Taken after the stopping signal (a request that was already on its way): told at once.
            _ = Task.Run(() => request.GoAwayAsync(Handshake));
        }
    }

    internal void Remove(LongLivedRequest request) => _open.TryRemove(request, out _);

    /// <summary>
    /// Completes once every connection still open is a long-lived one (and at least one is) and no
    /// other request is in flight: from then on, waiting for --graceful-timeout only delays the kill.
    /// </summary>
    public async Task OnlyLongLivedRemainAsync(AdmissionGate gate, RequestStats stats, CancellationToken ct)
    {
        while (true)
        {
            // The gate counts only the worker's own connections and requests: so do these.
            var longLived = AdmittedCount;
            if (longLived > 0 && stats.InFlight <= longLived && gate.OpenConnections <= longLived)
            {
                return;
            }
            await Task.Delay(Poll, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The host's stopping signal (ApplicationStopping): websockets the app leaves open are closed by Corral, after <see cref="Grace"/>.</summary>
    private void OnStopping()
    {
        if (Interlocked.Exchange(ref _stopping, 1) == 0 && !_open.IsEmpty)
        {
            _ = Task.Run(GoAwayAsync);
        }
    }

    private async Task GoAwayAsync()
    {
        try
        {
            await Task.Delay(Grace).ConfigureAwait(false);
            var open = _open.Keys.Where(r => r.WebSocket is { CloseSent: false }).ToList();
            if (open.Count == 0)
            {
                return;
            }
            AgentRuntime.Log.Info($"Closing {open.Count} websocket(s) the app left open with 1001 (going away) (pid: {Environment.ProcessId})");
            await Task.WhenAll(open.Select(r => r.GoAwayAsync(Handshake))).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Background.Report("Closing websockets", e);
        }
    }
}
