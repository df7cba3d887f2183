using System.Globalization;
using Corral.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>
/// SignalR across workers (issue #17, item 2): a client's negotiate and its transport requests may
/// reach different workers, and the connection lives in the one that issued the token. Real
/// Microsoft.AspNetCore.SignalR.Client connections to tests/apps/RealtimeApp's hub, under each accept
/// policy and each transport: every one connects and echoes, and the connections end up on both workers.
/// </summary>
public sealed class SignalRAffinityTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Call = TimeSpan.FromSeconds(30);
    private const int Connections = 24;
    private const string LeaderLine = @"\[(\d+)\] \[DEBUG\] Worker takes new connections first";

    public static TheoryData<HttpTransportType, string> TransportsAndPolicies => new()
    {
        { HttpTransportType.WebSockets, "kernel" },
        { HttpTransportType.ServerSentEvents, "kernel" },
        { HttpTransportType.LongPolling, "kernel" },
        { HttpTransportType.WebSockets, "pack" },
        { HttpTransportType.ServerSentEvents, "pack" },
        { HttpTransportType.LongPolling, "pack" },
    };

    private static HubConnection Connect(int port, HttpTransportType transport, bool reconnect = false)
    {
        var builder = new HubConnectionBuilder().WithUrl($"http://127.0.0.1:{port}/hub", transport);
        if (reconnect)
        {
            builder.WithAutomaticReconnect([TimeSpan.Zero, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5)]);
        }
        return builder.Build();
    }

    /// <summary>
    /// N connections started one after another all connect and echo (before the fix about a third
    /// failed with 404 "No Connection with that ID"), the worker that holds them (Pid) is each of
    /// the two (load is spread), every request is in the access log once (a forwarded one is not
    /// logged again by its owner), and nothing is logged as an error.
    /// </summary>
    [Theory]
    [MemberData(nameof(TransportsAndPolicies))]
    public async Task EveryConnectionSucceedsAndBothWorkersHoldSome(HttpTransportType transport, string policy)
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--accept-policy", policy, "--log-level", "debug",
            "--access-logfile", "-", "--access-logformat", "access %(r)s %(s)s", apps.RealtimeApp]);
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);
        using var busy = new CancellationTokenSource();
        var pauser = Task.CompletedTask;
        if (policy == "pack")
        {
            // pack sends every new connection to the leader while it keeps up: a leader that is
            // busy (paused here a moment at a time, as by load or a long GC) leaves some to the other.
            var leader = int.Parse((await corral.WaitForLineAsync(LeaderLine, Boot)).Groups[1].Value, CultureInfo.InvariantCulture);
            pauser = PauseNowAndThenAsync(leader, busy.Token);
        }

        var hubs = new List<HubConnection>();
        var failures = new List<string>();
        var owners = new List<int>();
        var beforeDispose = 0;
        try
        {
            for (var i = 0; i < Connections; i++)
            {
                var hub = Connect(port, transport);
                hubs.Add(hub);
                try
                {
                    using var timeout = new CancellationTokenSource(Call);
                    await hub.StartAsync(timeout.Token);
                    Assert.Equal($"hello {i}", await hub.InvokeAsync<string>("Echo", $"hello {i}", timeout.Token));
                    owners.Add(await hub.InvokeAsync<int>("Pid", timeout.Token));
                }
                catch (Exception e) when (e is not Xunit.Sdk.XunitException)
                {
                    failures.Add($"#{i}: {e.GetType().Name}: {e.Message}");
                }
            }
            busy.Cancel();
            await pauser;
            // Still connected, each call after the others started: the connections live on.
            foreach (var hub in hubs.Where(h => h.State == HubConnectionState.Connected))
            {
                using var timeout = new CancellationTokenSource(Call);
                Assert.Equal("again", await hub.InvokeAsync<string>("Echo", "again", timeout.Token));
            }
            beforeDispose = corral.Lines.Count;
        }
        finally
        {
            busy.Cancel();
            await pauser;
            foreach (var hub in hubs)
            {
                await hub.DisposeAsync();
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {Connections} connections failed:\n{string.Join('\n', failures)}\n{corral.Output}");
        Assert.Equal(workers.Order(), owners.Distinct().Order());
        if (transport == HttpTransportType.WebSockets)
        {
            // One websocket request per connection, logged once (by the worker the client reached) when it ends.
            await WaitUntilAsync(() => corral.CountLines(@"access GET /hub\?id=\S+ HTTP/1\.1 101") >= Connections, TimeSpan.FromSeconds(20));
            Assert.Equal(Connections, corral.CountLines(@"access GET /hub\?id=\S+ HTTP/1\.1 101"));
        }
        Assert.Equal(Connections, corral.CountLines(@"access POST /hub/negotiate\?negotiateVersion=1 HTTP/1\.1 200"));
        Assert.DoesNotContain(corral.Lines, l => l.Contains("[ERROR]", StringComparison.Ordinal));
        // Until the clients stop (a long poll still out when its connection is deleted gets SignalR's own 404).
        Assert.DoesNotContain(corral.Lines.Take(beforeDispose), l => l.StartsWith("access ", StringComparison.Ordinal) && l.EndsWith(" 404", StringComparison.Ordinal));
    }

    /// <summary>
    /// The worker that holds a connection is killed: the client (automatic reconnect) sees it go,
    /// negotiates again with a worker that is alive, and its calls succeed; a request that still
    /// carries the dead worker's token is answered 404, as SignalR answers for a connection it does
    /// not know, whichever worker it reaches.
    /// </summary>
    [Theory]
    [InlineData(HttpTransportType.WebSockets)]
    [InlineData(HttpTransportType.LongPolling)]
    public async Task AConnectionWhoseWorkerIsKilledNegotiatesAgain(HttpTransportType transport)
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--accept-policy", "kernel", "--log-level", "debug", apps.RealtimeApp]);
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);

        // A few connections (some relayed by the worker the client reached): the first one's worker is killed.
        var hubs = new List<HubConnection>();
        try
        {
            var owners = new List<int>();
            for (var i = 0; i < 6; i++)
            {
                var hub = Connect(port, transport, reconnect: true);
                hubs.Add(hub);
                using var timeout = new CancellationTokenSource(Call);
                await hub.StartAsync(timeout.Token);
                owners.Add(await hub.InvokeAsync<int>("Pid", timeout.Token));
            }
            var victim = hubs[0];
            var owner = owners[0];
            var reconnecting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            victim.Reconnecting += _ =>
            {
                reconnecting.TrySetResult();
                return Task.CompletedTask;
            };
            victim.Reconnected += _ =>
            {
                reconnected.TrySetResult();
                return Task.CompletedTask;
            };

            Kill(owner, SIGKILL);
            await reconnecting.Task.WaitAsync(Call);
            await reconnected.Task.WaitAsync(Call);
            using (var timeout = new CancellationTokenSource(Call))
            {
                Assert.Equal("after", await victim.InvokeAsync<string>("Echo", "after", timeout.Token));
                Assert.NotEqual(owner, await victim.InvokeAsync<int>("Pid", timeout.Token));
            }

            // Every other connection the dead worker held comes back too.
            foreach (var hub in hubs.Skip(1))
            {
                await WaitUntilAsync(() => hub.State == HubConnectionState.Connected, Call);
                using var timeout = new CancellationTokenSource(Call);
                Assert.Equal("back", await hub.InvokeAsync<string>("Echo", "back", timeout.Token));
            }

            // A token the dead worker issued, on new connections (to either worker, or its replacement): 404.
            await corral.WaitForWorkersAsync(2, Boot, gone: [owner]);
            for (var i = 0; i < 6; i++)
            {
                var (status, _) = await Http.GetAsync(port, $"/hub?id={owner}~Vh3xGone", TimeSpan.FromSeconds(10));
                Assert.Equal(404, status);
            }
            Assert.Contains(workers, w => w != owner && IsAlive(w));
        }
        finally
        {
            foreach (var hub in hubs)
            {
                await hub.DisposeAsync();
            }
        }
    }

    private static async Task PauseNowAndThenAsync(int pid, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                Kill(pid, SIGSTOP);
                try
                {
                    await Task.Delay(40, ct);
                }
                finally
                {
                    Kill(pid, SIGCONT);
                }
                await Task.Delay(60, ct);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            Kill(pid, SIGCONT);
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
    }
}
