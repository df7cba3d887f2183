using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using Corral.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>
/// Websockets and SignalR through a draining worker (HUP, --max-requests, USR2 then TERM): the client
/// gets a close frame (1000 or 1001) within seconds, not an abnormal closure when the worker is killed
/// at --graceful-timeout, and reconnects to a new worker. --graceful-timeout is 30 s throughout, so a
/// close that only comes with the kill fails every wait here.
/// </summary>
public sealed class LongLivedConnectionTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    /// <summary>From the signal to the close frame, a new worker's boot included; far less than --graceful-timeout.</summary>
    private static readonly TimeSpan CloseWithin = TimeSpan.FromSeconds(15);

    private readonly string _dir = Directory.CreateTempSubdirectory("corral-longlived-").FullName;
    private int _newMaster;

    public void Dispose()
    {
        if (_newMaster > 0)
        {
            foreach (var pid in Descendants(_newMaster).Append(_newMaster))
            {
                Kill(pid, SIGKILL);
            }
        }
        Directory.Delete(_dir, recursive: true);
    }

    [Theory]
    [InlineData("/ws/echo", "all")] // ignores the host's stopping signal: Corral says 1001 itself
    [InlineData("/ws/polite", "all")] // closes with 1001 on ApplicationStopping
    [InlineData("/ws/echo", "rolling")]
    public async Task AWebsocketOpenDuringAHupIsClosedGracefullyAndANewOneReachesTheNewWorker(string path, string strategy)
    {
        var apps = await TestApps.GetAsync();
        using var corral = Start(apps.RealtimeApp, "--reload-strategy", strategy);
        var port = await corral.PortAsync();
        var old = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        using var ws = await ConnectAsync(port, path);
        var closing = ReceiveCloseAsync(ws);
        corral.Signal(SIGHUP);

        var (status, elapsed) = await closing;
        Assert.True(status is WebSocketCloseStatus.EndpointUnavailable or WebSocketCloseStatus.NormalClosure, $"closed with {status}");
        Assert.True(elapsed < CloseWithin, $"the close frame came {elapsed.TotalSeconds:0.0} s after HUP");
        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);

        await AssertOldWorkerLeftAndNewOneServesAsync(corral, port, path, old);
    }

    [Fact]
    public async Task AWebsocketOnAWorkerRecycledAtMaxRequestsIsClosedGracefully()
    {
        var apps = await TestApps.GetAsync();
        using var corral = Start(apps.RealtimeApp, "--max-requests", "2");
        var port = await corral.PortAsync();
        var old = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        using var ws = await ConnectAsync(port, "/ws/echo"); // in flight: served (counted) only when it ends
        var closing = ReceiveCloseAsync(ws);
        Assert.Equal((200, old.ToString(CultureInfo.InvariantCulture)), await Http.GetAsync(port, "/pid"));
        Assert.Equal((200, old.ToString(CultureInfo.InvariantCulture)), await Http.GetAsync(port, "/pid")); // the 2nd served: the recycle
        await corral.WaitForLineAsync("Autorestarting worker", TimeSpan.FromSeconds(10));

        var (status, elapsed) = await closing;
        Assert.True(status is WebSocketCloseStatus.EndpointUnavailable or WebSocketCloseStatus.NormalClosure, $"closed with {status}");
        Assert.True(elapsed < CloseWithin, $"the close frame came {elapsed.TotalSeconds:0.0} s after the recycle was due");
        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);

        await AssertOldWorkerLeftAndNewOneServesAsync(corral, port, "/ws/echo", old);
    }

    /// <summary>
    /// SignalR's own client with automatic reconnect, across 3 HUPs. An abnormal closure is any
    /// Reconnecting or Closed event that carries an exception (a websocket cut without a close frame,
    /// or closed with an error status); a server that closes cleanly (close frame 1000) gives
    /// Reconnecting(null). Each time the client must reach the new worker and every call succeed.
    /// </summary>
    [Fact]
    public async Task ASignalRClientReconnectsCleanlyToTheNewWorkerAcrossThreeHups()
    {
        var apps = await TestApps.GetAsync();
        using var corral = Start(apps.RealtimeApp);
        var port = await corral.PortAsync();
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        var abnormal = new List<string>();
        var reconnected = new SemaphoreSlim(0);
        await using var hub = new HubConnectionBuilder()
            .WithUrl($"http://127.0.0.1:{port}/hub")
            .WithAutomaticReconnect([TimeSpan.Zero, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2)])
            .Build();
        hub.Reconnecting += e =>
        {
            if (e is not null)
            {
                lock (abnormal)
                {
                    abnormal.Add("Reconnecting: " + e);
                }
            }
            return Task.CompletedTask;
        };
        hub.Reconnected += _ =>
        {
            reconnected.Release();
            return Task.CompletedTask;
        };
        hub.Closed += e =>
        {
            lock (abnormal)
            {
                abnormal.Add("Closed: " + (e?.ToString() ?? "(no exception)"));
            }
            return Task.CompletedTask;
        };
        using (var start = new CancellationTokenSource(TimeSpan.FromSeconds(15)))
        {
            await hub.StartAsync(start.Token);
        }
        Assert.Equal(worker, await InvokeAsync<int>(hub, "Pid"));

        for (var round = 1; round <= 3; round++)
        {
            var signalled = Stopwatch.StartNew();
            corral.Signal(SIGHUP);
            Assert.True(await reconnected.WaitAsync(CloseWithin + TimeSpan.FromSeconds(5)),
                $"HUP {round}: no reconnect within {(CloseWithin + TimeSpan.FromSeconds(5)).TotalSeconds} s (abnormal: {string.Join("; ", abnormal)}). Output:\n{corral.Output}");
            var reconnectedAfter = signalled.Elapsed;
            var pid = await InvokeAsync<int>(hub, "Pid");
            Assert.NotEqual(worker, pid);
            for (var i = 0; i < 20; i++)
            {
                var text = $"round {round} call {i}";
                Assert.Equal(text, await InvokeAsync<string>(hub, "Echo", text));
            }
            Assert.True(reconnectedAfter < CloseWithin, $"HUP {round}: reconnected {reconnectedAfter.TotalSeconds:0.0} s after it");
            await WaitUntilAsync(() => !IsAlive(worker), TimeSpan.FromSeconds(10), $"HUP {round}: the old worker {worker} is still alive");
            worker = pid;
        }
        lock (abnormal)
        {
            Assert.True(abnormal.Count == 0, string.Join("\n", abnormal));
        }
        Assert.DoesNotContain("did not finish within --graceful-timeout", corral.Output, StringComparison.Ordinal);
        await hub.StopAsync();
    }

    /// <summary>
    /// The same under -w 2 and the kernel's accept policy, with 6 clients: a client's negotiate and its
    /// websocket often reach different workers, so some websockets are relayed by one worker to the
    /// other (their owner), and a HUP drains both ends of such a relay. Across 3 HUPs of each strategy,
    /// every client reconnects without an abnormal closure, reaches a new worker, and its calls succeed.
    /// </summary>
    [Theory]
    [InlineData("all")]
    [InlineData("rolling")]
    public async Task SignalRClientsRelayedBetweenTwoWorkersReconnectCleanlyAcrossThreeHups(string strategy)
    {
        const int Clients = 6;
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--accept-policy", "kernel", "--reload-strategy", strategy,
            "--log-level", "debug", "--graceful-timeout", "30", apps.RealtimeApp]);
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);

        var abnormal = new List<string>();
        var hubs = new List<HubConnection>();
        try
        {
            for (var i = 0; i < Clients; i++)
            {
                var hub = new HubConnectionBuilder()
                    .WithUrl($"http://127.0.0.1:{port}/hub")
                    .WithAutomaticReconnect([TimeSpan.Zero, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2)])
                    .Build();
                var name = $"client {i}";
                hub.Reconnecting += e =>
                {
                    if (e is not null)
                    {
                        lock (abnormal)
                        {
                            abnormal.Add($"{name} reconnecting: {e}");
                        }
                    }
                    return Task.CompletedTask;
                };
                hub.Closed += e =>
                {
                    lock (abnormal)
                    {
                        abnormal.Add($"{name} closed: " + (e?.ToString() ?? "(no exception)"));
                    }
                    return Task.CompletedTask;
                };
                hubs.Add(hub);
                using var start = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                await hub.StartAsync(start.Token);
                Assert.Contains(await InvokeAsync<int>(hub, "Pid"), workers);
            }

            for (var round = 1; round <= 3; round++)
            {
                var old = workers;
                corral.Signal(SIGHUP);
                workers = await corral.WaitForWorkersAsync(2, Boot, gone: old);
                foreach (var pid in old)
                {
                    await WaitUntilAsync(() => !IsAlive(pid), CloseWithin, $"HUP {round}: the old worker {pid} is still alive. Output:\n{corral.Output}");
                }
                await WaitUntilAsync(() => hubs.All(h => h.State == HubConnectionState.Connected), CloseWithin,
                    $"HUP {round}: clients not connected again: {string.Join(", ", hubs.Select(h => h.State))} (abnormal: {string.Join("; ", abnormal)})");
                foreach (var hub in hubs)
                {
                    Assert.Contains(await InvokeAsync<int>(hub, "Pid"), workers);
                    for (var i = 0; i < 5; i++)
                    {
                        var text = $"round {round} call {i}";
                        Assert.Equal(text, await InvokeAsync<string>(hub, "Echo", text));
                    }
                }
            }
            lock (abnormal)
            {
                Assert.True(abnormal.Count == 0, string.Join("\n", abnormal));
            }
            Assert.DoesNotContain("did not finish within --graceful-timeout", corral.Output, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var hub in hubs)
            {
                await hub.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task AWebsocketOnTheOldMasterIsClosedGracefullyByUsr2ThenTerm()
    {
        var apps = await TestApps.GetAsync();
        var pidFile = Path.Combine(_dir, "corral.pid");
        using var corral = Start(apps.RealtimeApp, "-p", pidFile);
        var port = await corral.PortAsync();
        var old = (await corral.WaitForWorkersAsync(1, Boot)).Single();
        using var ws = await ConnectAsync(port, "/ws/echo");

        corral.Signal(SIGUSR2);
        await WaitUntilAsync(() => File.Exists(pidFile + ".2") && File.ReadAllText(pidFile + ".2").Trim().Length > 0, Boot, "no new master");
        _newMaster = int.Parse(File.ReadAllText(pidFile + ".2").Trim(), CultureInfo.InvariantCulture);
        await WaitUntilAsync(() => Children(_newMaster).Count == 1 && corral.CountLines($@"\[{_newMaster}\] \[DEBUG\] Worker ready") == 1, Boot, "the new master's worker is not ready");
        var newWorker = Children(_newMaster).Single();

        // The websocket still works on the old master's worker until the old master stops.
        await EchoAsync(ws, "still here");
        var closing = ReceiveCloseAsync(ws);
        corral.Signal(SIGTERM);
        var (status, elapsed) = await closing;
        Assert.True(status is WebSocketCloseStatus.EndpointUnavailable or WebSocketCloseStatus.NormalClosure, $"closed with {status}");
        Assert.True(elapsed < CloseWithin, $"the close frame came {elapsed.TotalSeconds:0.0} s after TERM");
        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.False(IsAlive(old));

        using var again = await ConnectAsync(port, "/ws/echo");
        Assert.Equal((200, newWorker.ToString(CultureInfo.InvariantCulture)), await Http.GetAsync(port, "/pid"));
        await again.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    private static CorralProcess Start(string app, params string[] more) =>
        CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:0", "--log-level", "debug", "--graceful-timeout", "30", .. more, app]);

    private static async Task AssertOldWorkerLeftAndNewOneServesAsync(CorralProcess corral, int port, string path, int old)
    {
        // Gone on its own (drained), long before the kill at --graceful-timeout.
        await WaitUntilAsync(() => !IsAlive(old), TimeSpan.FromSeconds(10), $"the old worker {old} is still alive. Output:\n{corral.Output}");
        Assert.DoesNotContain("did not finish within --graceful-timeout", corral.Output, StringComparison.Ordinal);
        var worker = (await corral.WaitForWorkersAsync(1, Boot, gone: [old])).Single();
        using var ws = await ConnectAsync(port, path);
        Assert.Equal((200, worker.ToString(CultureInfo.InvariantCulture)), await Http.GetAsync(port, "/pid"));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        Assert.Equal(WebSocketState.Closed, ws.State);
    }

    private static async Task<ClientWebSocket> ConnectAsync(int port, string path)
    {
        var ws = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await ws.ConnectAsync(new Uri($"ws://127.0.0.1:{port}{path}"), timeout.Token);
        await EchoAsync(ws, "hello");
        return ws;
    }

    private static async Task EchoAsync(ClientWebSocket ws, string text)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        var buffer = new byte[1024];
        var result = await ws.ReceiveAsync(buffer, timeout.Token);
        Assert.Equal(text, Encoding.UTF8.GetString(buffer, 0, result.Count));
    }

    /// <summary>
    /// Waits (at most <see cref="CloseWithin"/>) for the server's close frame: its status, and when it
    /// came. An abnormal closure (no close frame) throws WebSocketException; no close in time fails.
    /// </summary>
    private static async Task<(WebSocketCloseStatus? Status, TimeSpan Elapsed)> ReceiveCloseAsync(ClientWebSocket ws)
    {
        var started = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(CloseWithin);
        var buffer = new byte[1024];
        try
        {
            while (true)
            {
                var result = await ws.ReceiveAsync(buffer, timeout.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return (result.CloseStatus, started.Elapsed);
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            Assert.Fail($"no close frame within {CloseWithin.TotalSeconds} s");
            throw;
        }
    }

    private static async Task<T> InvokeAsync<T>(HubConnection hub, string method, params object[] args)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await hub.InvokeCoreAsync<T>(method, args, timeout.Token);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan within, string what)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what} (waited {within.TotalSeconds} s)");
            }
            await Task.Delay(100);
        }
    }
}
