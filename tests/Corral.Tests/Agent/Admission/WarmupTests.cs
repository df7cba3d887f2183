using System.Buffers;
using System.Text;
using Corral.Agent;
using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Corral.Agent.Logging;
using Microsoft.AspNetCore.Connections;

namespace Corral.Tests;

/// <summary>
/// --warmup-requests without Kestrel: the test plays Kestrel's part on the warm-up's listener
/// (accepts its in-memory connections, reads each request, writes a response) and reads the error log.
/// </summary>
public sealed class WarmupTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly string _dir = Directory.CreateTempSubdirectory("corral-warmup-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string ErrorLog => Path.Combine(_dir, "error.log");

    private string[] ErrorLines() => File.Exists(ErrorLog) ? File.ReadAllLines(ErrorLog) : [];

    private (Warmup Warmup, AdmissionGate Gate) Build(AgentOptions options)
    {
        var gate = AdmissionGate.For(options);
        return (new Warmup(options, gate, new AgentLog(ErrorLog, "debug")), gate);
    }

    private static string Response(int status) => $"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    /// <summary>Kestrel's part: each connection is served on its own task by <paramref name="serve"/> (request head in, connection to answer on).</summary>
    private sealed class FakeKestrel
    {
        private readonly List<Task> _connections = [];

        public List<string> Requests { get; } = [];

        public Task Run(IConnectionListener listener, Func<string, ConnectionContext, Task> serve) => Task.Run(async () =>
        {
            while (await listener.AcceptAsync() is { } connection)
            {
                Assert.NotNull(connection.Features.Get<WarmupConnection>());
                var head = await ReadHeadAsync(connection);
                lock (Requests)
                {
                    Requests.Add(head);
                }
                _connections.Add(serve(head, connection));
            }
            await Task.WhenAll(_connections);
        });

        private static async Task<string> ReadHeadAsync(ConnectionContext connection)
        {
            var input = connection.Transport.Input;
            while (true)
            {
                var result = await input.ReadAsync();
                var text = Encoding.ASCII.GetString(result.Buffer.ToArray());
                if (text.Contains("\r\n\r\n", StringComparison.Ordinal) || result.IsCompleted)
                {
                    input.AdvanceTo(result.Buffer.End);
                    return text;
                }
                input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            }
        }
    }

    /// <summary>Writes <paramref name="response"/> and closes the connection, as Kestrel after a "Connection: close" response.</summary>
    private static async Task Answer(ConnectionContext connection, string response)
    {
        await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(response));
        await connection.DisposeAsync();
    }

    private static string Target(string head) => head[..head.IndexOf("\r\n", StringComparison.Ordinal)];

    [Fact]
    public async Task Sends_N_requests_taking_the_paths_in_turn_while_accepts_are_held()
    {
        var (warmup, gate) = Build(new AgentOptions { WorkerClass = WorkerClass.Async, Warmup = new() { Requests = 5, Paths = ["/a", "/b"] } });
        var kestrel = new FakeKestrel();
        var heldDuring = new List<bool>();
        Task? clientAccept = null;
        var served = kestrel.Run(warmup.Listen(), async (_, connection) =>
        {
            heldDuring.Add(gate.AcceptsHeld is not null);
            // A real accept that starts now waits for the warm-up's end.
            clientAccept ??= gate.AcquireConnectionAsync(CancellationToken.None).AsTask();
            await Answer(connection, Response(200));
        });

        Assert.Null(gate.AcceptsHeld);
        await warmup.RunAsync().WaitAsync(Patience);
        await served.WaitAsync(Patience); // the listener ended: no more connections

        Assert.Equal(["GET /a HTTP/1.1", "GET /b HTTP/1.1", "GET /a HTTP/1.1", "GET /b HTTP/1.1", "GET /a HTTP/1.1"], kestrel.Requests.Select(Target));
        Assert.All(kestrel.Requests, head =>
        {
            Assert.Contains("\r\nHost: localhost\r\n", head, StringComparison.Ordinal);
            Assert.Contains("\r\nUser-Agent: corral-warmup\r\n", head, StringComparison.Ordinal);
            Assert.Contains("\r\nConnection: close\r\n", head, StringComparison.Ordinal);
            Assert.DoesNotContain("X-Forwarded-Proto", head, StringComparison.Ordinal);
        });
        Assert.Equal([true, true, true, true, true], heldDuring);
        Assert.Null(gate.AcceptsHeld);
        await clientAccept!.WaitAsync(Patience);
        var lines = ErrorLines();
        Assert.Contains(lines, l => l.Contains("[DEBUG] Warmed up: 5 requests to /a, /b in ", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("[WARNING]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_accept_started_during_the_warm_up_waits_for_its_end()
    {
        var (warmup, gate) = Build(new AgentOptions { WorkerClass = WorkerClass.Async, Warmup = new() { Requests = 1 } });
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task? clientAccept = null;
        var served = new FakeKestrel().Run(warmup.Listen(), async (_, connection) =>
        {
            clientAccept = gate.AcquireConnectionAsync(CancellationToken.None).AsTask();
            await answer.Task;
            await Answer(connection, Response(200));
        });
        var run = warmup.RunAsync();

        while (clientAccept is null)
        {
            await Task.Delay(10).WaitAsync(Patience);
        }
        await Task.Delay(100);
        Assert.False(clientAccept.IsCompleted);

        answer.SetResult();
        await run.WaitAsync(Patience);
        await clientAccept.WaitAsync(Patience);
        await served.WaitAsync(Patience);
    }

    [Fact]
    public async Task With_certfile_the_requests_say_they_came_over_TLS()
    {
        var (warmup, _) = Build(new AgentOptions { WorkerClass = WorkerClass.Async, Warmup = new() { Requests = 1 }, Tls = new() { CertFile = "/etc/corral/cert.pem" } });
        var kestrel = new FakeKestrel();
        var served = kestrel.Run(warmup.Listen(), (_, connection) => Answer(connection, Response(200)));
        await warmup.RunAsync().WaitAsync(Patience);
        await served.WaitAsync(Patience);
        Assert.Contains("\r\nX-Forwarded-Proto: https\r\n", Assert.Single(kestrel.Requests), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_path_that_does_not_answer_2xx_or_3xx_is_logged_once()
    {
        var (warmup, _) = Build(new AgentOptions { WorkerClass = WorkerClass.Async, Warmup = new() { Requests = 8, Paths = ["/missing", "/ok", "/moved", "/broken"] } });
        var kestrel = new FakeKestrel();
        var served = kestrel.Run(warmup.Listen(), (head, connection) => Target(head) switch
        {
            "GET /missing HTTP/1.1" => Answer(connection, Response(404)),
            "GET /moved HTTP/1.1" => Answer(connection, Response(302)),
            "GET /broken HTTP/1.1" => Answer(connection, "oops"),
            _ => Answer(connection, Response(200)),
        });

        await warmup.RunAsync().WaitAsync(Patience);
        await served.WaitAsync(Patience);

        Assert.Equal(8, kestrel.Requests.Count);
        var warnings = ErrorLines().Where(l => l.Contains("[WARNING]", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.EndsWith("[WARNING] Warm-up request GET /missing got status 404: choose a --warmup-path that answers 2xx and runs the code real requests run", warnings[0], StringComparison.Ordinal);
        Assert.EndsWith("[WARNING] Warm-up request GET /broken got no HTTP response: choose a --warmup-path that answers 2xx and runs the code real requests run", warnings[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_warm_up_longer_than_its_timeout_stops_there_and_releases_the_accepts()
    {
        // 3 s: the first request, answered, must finish within it even on a loaded machine.
        var (warmup, gate) = Build(new AgentOptions { WorkerClass = WorkerClass.Async, Warmup = new() { Requests = 3, Timeout = 3 } });
        var kestrel = new FakeKestrel();
        var hung = new TaskCompletionSource();
        // The first request is answered, the second never is.
        var served = kestrel.Run(warmup.Listen(), (_, connection) => kestrel.Requests.Count == 1 ? Answer(connection, Response(200)) : hung.Task);

        var started = DateTime.UtcNow;
        await warmup.RunAsync().WaitAsync(Patience);
        var took = DateTime.UtcNow - started;
        hung.SetResult();
        await served.WaitAsync(Patience);

        Assert.InRange(took.TotalSeconds, 2.9, 10);
        Assert.Equal(2, kestrel.Requests.Count);
        Assert.Null(gate.AcceptsHeld);
        var lines = ErrorLines();
        Assert.Contains(lines, l => l.EndsWith("[WARNING] Warm-up stopped after 1 of 3 requests to /: it may take at most 3 s (half of --timeout)", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Warmed up", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_worker_that_starts_draining_stops_its_warm_up_quietly()
    {
        var (warmup, gate) = Build(new AgentOptions { WorkerClass = WorkerClass.Async, Warmup = new() { Requests = 3, Timeout = 60 } });
        var kestrel = new FakeKestrel();
        var hung = new TaskCompletionSource();
        var served = kestrel.Run(warmup.Listen(), async (head, connection) =>
        {
            if (kestrel.Requests.Count == 1)
            {
                await Answer(connection, Response(200));
                return;
            }
            _ = gate.BeginDrainAsync(); // TERM while the second request runs
            await hung.Task;
        });

        await warmup.RunAsync().WaitAsync(Patience);
        hung.SetResult();
        await served.WaitAsync(Patience);

        Assert.Equal(2, kestrel.Requests.Count);
        Assert.Null(gate.AcceptsHeld);
        var lines = ErrorLines();
        Assert.Contains(lines, l => l.EndsWith("[DEBUG] Warm-up stopped after 1 of 3 requests to /: the worker is stopping", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("[WARNING]", StringComparison.Ordinal) || l.Contains("Warmed up", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Sync_the_warm_up_waits_for_a_request_already_running()
    {
        // The agent's own request counts (the sync rule reads them): one request in flight from before.
        var (warmup, _) = Build(new AgentOptions { WorkerClass = WorkerClass.Sync, Warmup = new() { Requests = 1 } });
        var kestrel = new FakeKestrel();
        var served = kestrel.Run(warmup.Listen(), (_, connection) => Answer(connection, Response(200)));
        AgentRuntime.Stats.Begin();
        Task run;
        try
        {
            run = warmup.RunAsync();
            await Task.Delay(150);
            Assert.Empty(kestrel.Requests);
        }
        finally
        {
            AgentRuntime.Stats.End();
        }
        await run.WaitAsync(Patience);
        await served.WaitAsync(Patience);
        Assert.Single(kestrel.Requests);
    }
}
