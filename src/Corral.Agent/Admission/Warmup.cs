using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using System.Threading.Channels;
using Corral.Agent.Contract;
using Corral.Agent.Logging;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Admission;

/// <summary>
/// --warmup-requests: before a new worker reports ready, it serves that many GET requests for the
/// --warmup-path paths, in turn, without a socket. Kestrel listens on one more endpoint,
/// <see cref="Endpoint"/>, whose "connections" are in-memory pipes written here, so each request runs
/// the real path: Kestrel's HTTP/1.1 parser, every middleware, the app's endpoint. The app has then
/// compiled that code and done its first-request set-up before its first real request, while the old
/// workers still serve. Real accepts are held while it runs, so connections go to workers that are
/// ready. (It does not make a reload under load cheaper: bench/results/fresh-worker.md.)
/// </summary>
internal sealed class Warmup(AgentOptions options, AdmissionGate gate, AgentLog log)
{
    private readonly Channel<ConnectionContext> _connections = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    public EndPoint Endpoint { get; } = new WarmupEndPoint();

    public IConnectionListener Listen() => new WarmupListener(Endpoint, _connections.Reader);

    /// <summary>Sends the requests one after another; never throws: a failed warm-up only leaves the worker colder.</summary>
    public async Task RunAsync()
    {
        var paths = options.Warmup.Paths.Length > 0 ? options.Warmup.Paths : ["/"];
        var count = options.Warmup.Requests;
        var limit = TimeSpan.FromSeconds(Math.Max(0.1, options.Warmup.Timeout));
        // With --certfile the app sees the warm-up as plain HTTP from 127.0.0.1, the proxy the secure
        // scheme headers are believed from by default: say it was TLS, or HTTPS redirection answers.
        var tlsHeader = options.Tls is null ? "" : "X-Forwarded-Proto: https\r\n";
        var requests = paths.Select(p => Encoding.ASCII.GetBytes($"GET {p} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: corral-warmup\r\n{tlsHeader}Connection: close\r\n\r\n")).ToArray();
        var reported = new bool[paths.Length];
        var started = Stopwatch.GetTimestamp();
        var done = 0;
        var what = paths.Length == 1 ? paths[0] : string.Join(", ", paths);
        // Held accepts also tell CorralMiddleware to look for warm-up connections (AcceptsHeld).
        gate.HoldAccepts();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(gate.DrainToken);
        stop.CancelAfter(limit);
        try
        {
            // sync: one request at a time, so a real one still running from before the hold finishes
            // first (one taken since waits in CorralMiddleware, uncounted, for the warm-up to end).
            while (gate.OneRequestAtATime && AgentRuntime.Stats.InFlight > 0)
            {
                await Task.Delay(5, stop.Token).ConfigureAwait(false);
            }
            for (; done < count; done++)
            {
                var i = done % paths.Length;
                var status = await SendAsync(requests[i], done, stop.Token).ConfigureAwait(false);
                if (!reported[i] && status is < 200 or >= 400)
                {
                    reported[i] = true;
                    var answer = status == 0 ? "no HTTP response" : $"status {status}";
                    log.Warning($"Warm-up request GET {paths[i]} got {answer}: choose a --warmup-path that answers 2xx and runs the code real requests run");
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            if (gate.Draining)
            {
                log.Debug($"Warm-up stopped after {done} of {count} requests to {what}: the worker is stopping");
                return;
            }
            log.Warning($"Warm-up stopped after {done} of {count} requests to {what}: it may take at most {limit.TotalSeconds:0.#} s (half of --timeout)");
            return; // not "Warmed up": it did not finish
        }
        catch (Exception e)
        {
            log.Warning($"Warm-up stopped after {done} of {count} requests to {what}: {e.GetType().Name}: {e.Message}");
            return;
        }
        finally
        {
            _connections.Writer.TryComplete();
            gate.ReleaseAccepts();
        }
        log.Debug($"Warmed up: {done} requests to {what} in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0} ms");
    }

    /// <summary>One request on a connection of its own; returns the response's status (0: none).</summary>
    private async Task<int> SendAsync(byte[] request, int n, CancellationToken ct)
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        var client = new DuplexPipe(toClient.Reader, toServer.Writer);
        var connection = new WarmupConnectionContext($"corral-warmup-{n}", new DuplexPipe(toServer.Reader, toClient.Writer), Endpoint);
        await _connections.Writer.WriteAsync(connection, ct).ConfigureAwait(false);
        await client.Output.WriteAsync(request, ct).ConfigureAwait(false);
        var head = new byte[12]; // "HTTP/1.1 200"
        var headLength = 0;
        try
        {
            while (true)
            {
                // "Connection: close": Kestrel completes its side once the response is written.
                var result = await client.Input.ReadAsync(ct).ConfigureAwait(false);
                if (headLength < head.Length)
                {
                    var take = result.Buffer.Slice(0, Math.Min(result.Buffer.Length, head.Length - headLength));
                    take.CopyTo(head.AsSpan(headLength));
                    headLength += (int)take.Length;
                }
                client.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        finally
        {
            await client.Output.CompleteAsync().ConfigureAwait(false);
            await client.Input.CompleteAsync().ConfigureAwait(false);
        }
        return headLength == head.Length && head.AsSpan(0, 5).SequenceEqual("HTTP/"u8) && int.TryParse(Encoding.ASCII.GetString(head, 9, 3), out var status) ? status : 0;
    }

    /// <summary>
    /// A connection that is two pipes. When Kestrel is done with it (disposes or aborts it), the
    /// server's ends complete: the reader of the response sees its end.
    /// </summary>
    private sealed class WarmupConnectionContext : ConnectionContext
    {
        private readonly CancellationTokenSource _closed = new();

        public WarmupConnectionContext(string id, IDuplexPipe transport, EndPoint local)
        {
            ConnectionId = id;
            Transport = transport;
            LocalEndPoint = local;
            RemoteEndPoint = new IPEndPoint(IPAddress.Loopback, 0);
            Features.Set(WarmupConnection.Instance);
            ConnectionClosed = _closed.Token;
        }

        public override string ConnectionId { get; set; }
        public override IFeatureCollection Features { get; } = new FeatureCollection();
        public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();
        public override IDuplexPipe Transport { get; set; }

        public override void Abort(ConnectionAbortedException abortReason)
        {
            Transport.Output.Complete(abortReason);
            _closed.Cancel();
        }

        public override ValueTask DisposeAsync()
        {
            Transport.Input.Complete();
            Transport.Output.Complete();
            _closed.Cancel();
            return default;
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    private sealed class WarmupEndPoint : EndPoint
    {
        public override string ToString() => "corral-warmup";
    }

    /// <summary>Hands Kestrel the warm-up's connections; ends (null) once the warm-up is over.</summary>
    private sealed class WarmupListener(EndPoint endpoint, ChannelReader<ConnectionContext> connections) : IConnectionListener
    {
        private readonly CancellationTokenSource _unbound = new();

        public EndPoint EndPoint => endpoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _unbound.Token);
            try
            {
                while (await connections.WaitToReadAsync(linked.Token).ConfigureAwait(false))
                {
                    if (connections.TryRead(out var connection))
                    {
                        return connection;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
            return null;
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _unbound.Cancel();
            return default;
        }

        public ValueTask DisposeAsync() => UnbindAsync();
    }
}
