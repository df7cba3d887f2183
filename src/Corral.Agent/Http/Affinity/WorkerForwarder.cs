using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Http.Affinity;

/// <summary>
/// Passes a request on to the worker that owns its SignalR connection, over that worker's private
/// socket, and the answer back: long polls, sends and server-sent events as streamed HTTP, a
/// websocket as the upgrade itself (the owner's handshake answer goes to the client, then the bytes
/// flow both ways unchanged: frames, subprotocol, compression and close handshake are end to end).
/// </summary>
internal sealed class WorkerForwarder : IDisposable
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host",
    };

    private readonly string _directory;
    private readonly CancellationToken _stopping;
    private readonly HttpMessageInvoker _invoker;

    /// <param name="directory">The master's affinity folder, where worker PID listens on PID.sock.</param>
    /// <param name="stopping">This worker drains or stops: relays close (1001 to the client), forwarded requests end.</param>
    public WorkerForwarder(string directory, CancellationToken stopping)
    {
        _directory = directory;
        _stopping = stopping;
        _invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ActivityHeadersPropagator = null, // the client's own trace headers pass as they are
            ConnectTimeout = TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ConnectCallback = ConnectAsync,
        });
    }

    /// <summary>Forwards the request to worker <paramref name="pid"/>; answers 404, as SignalR does for an unknown connection, when that worker is gone.</summary>
    public async Task ForwardAsync(HttpContext context, int pid)
    {
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        // A websocket over HTTP/2 (RFC 8441, browsers use it over TLS): the owner gets it as an HTTP/1.1 upgrade.
        var connect = context.Features.Get<IHttpExtendedConnectFeature>();
        var h2WebSocket = connect is { IsExtendedConnect: true, Protocol: "websocket" };
        var upgrading = h2WebSocket || upgrade is { IsUpgradableRequest: true };
        // A long poll or an event stream ends when this worker drains; a send (POST) is short, and finishes.
        var longLived = !upgrading && HttpMethods.IsGet(context.Request.Method);
        using var request = BuildRequest(context, pid, upgrading, h2WebSocket);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, longLived ? _stopping : default);
        HttpResponseMessage response;
        try
        {
            response = await _invoker.SendAsync(request, cancel.Token).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException || e.HttpRequestError == HttpRequestError.ConnectionError)
        {
            // The owner is gone (exited, killed, recycled): its connections with it. The client negotiates again.
            await GoneAsync(context).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException) when (StoppedHere(context))
        {
            EndLongPoll(context);
            return;
        }
        using (response)
        {
            if (upgrading && response.StatusCode == HttpStatusCode.SwitchingProtocols)
            {
                CopyResponseHead(context, response, h2WebSocket);
                var client = h2WebSocket ? await connect!.AcceptAsync().ConfigureAwait(false) : await upgrade!.UpgradeAsync().ConfigureAwait(false);
                var owner = await response.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
                await using (owner.ConfigureAwait(false))
                {
                    await RelayAsync(client, owner, _stopping).ConfigureAwait(false);
                }
                return;
            }
            CopyResponseHead(context, response, h2WebSocket: false);
            try
            {
                await CopyBodyAsync(context, response, cancel.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (StoppedHere(context))
            {
                // An event stream ends as if the owner had closed it: the client connects again.
                EndLongPoll(context);
            }
        }
    }

    private bool StoppedHere(HttpContext context) => _stopping.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested;

    /// <summary>
    /// A long poll still waiting when this worker drains gets what SignalR answers a poll that timed
    /// out (200, empty): the client polls again, through a worker that is not draining, and the owner
    /// keeps its connection.
    /// </summary>
    private static void EndLongPoll(HttpContext context)
    {
        if (!context.Response.HasStarted)
        {
            context.Response.Clear();
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentLength = 0;
        }
    }

    private static async Task GoneAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        context.Response.ContentType = "text/plain";
        await context.Response.WriteAsync("No Connection with that ID").ConfigureAwait(false);
    }

    private static HttpRequestMessage BuildRequest(HttpContext context, int pid, bool upgrading, bool h2WebSocket)
    {
        var incoming = context.Request;
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(target) || target[0] != '/')
        {
            target = (incoming.PathBase + incoming.Path + incoming.QueryString).ToString();
        }
        var method = h2WebSocket ? HttpMethod.Get : new HttpMethod(incoming.Method);
        var request = new HttpRequestMessage(method, new Uri("http://w" + pid.ToString(CultureInfo.InvariantCulture) + target))
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (!upgrading && context.Features.Get<IHttpRequestBodyDetectionFeature>() is { CanHaveBody: true })
        {
            request.Content = new StreamContent(incoming.Body);
        }
        foreach (var (name, values) in incoming.Headers)
        {
            if (HopByHop.Contains(name) || HopConnection.IsHopHeader(name) || name.StartsWith(':'))
            {
                continue;
            }
            if (!request.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                request.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }
        if (upgrading)
        {
            request.Headers.TryAddWithoutValidation("Connection", "Upgrade");
            request.Headers.TryAddWithoutValidation("Upgrade", "websocket");
            if (h2WebSocket)
            {
                // HTTP/2 has no key; the owner's accept answers this one and stays between the workers.
                request.Headers.TryAddWithoutValidation("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
            }
        }
        if (incoming.Host.HasValue)
        {
            request.Headers.Host = incoming.Host.Value;
        }
        HopConnection.Describe(context, (name, value) => request.Headers.TryAddWithoutValidation(name, value));
        return request;
    }

    private static void CopyResponseHead(HttpContext context, HttpResponseMessage response, bool h2WebSocket)
    {
        var outgoing = context.Response;
        var switching = response.StatusCode == HttpStatusCode.SwitchingProtocols;
        // Over HTTP/2 a websocket is accepted with 200, and without the HTTP/1.1 handshake's headers.
        outgoing.StatusCode = h2WebSocket && switching ? StatusCodes.Status200OK : (int)response.StatusCode;
        foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
        {
            // Upgrade is the handshake's: it goes to the client with the 101.
            var handshake = name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase) && switching && !h2WebSocket;
            if ((HopByHop.Contains(name) && !handshake) || (h2WebSocket && name.Equals("Sec-WebSocket-Accept", StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }
            outgoing.Headers[name] = values.ToArray();
        }
    }

    /// <summary>Streams the body, flushed as it comes (server-sent events must not wait in a buffer).</summary>
    private static async Task CopyBodyAsync(HttpContext context, HttpResponseMessage response, CancellationToken ct)
    {
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            var buffer = new byte[16 * 1024];
            int read;
            while ((read = await body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                await context.Response.Body.FlushAsync(ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>How long a relay whose worker drains lets the owner close the websocket itself (SignalR does, when the owner stops too).</summary>
    internal static readonly TimeSpan OwnerGrace = TimeSpan.FromSeconds(1);

    /// <summary>The relay's own close (1000, no reason), sent to the client at a frame's edge.</summary>
    private static readonly byte[] RelayCloseFrame = WebSocketFrameStream.CloseFrame(1000, "");

    /// <summary>
    /// Relays an upgraded connection until either end closes it, then closes the other. When this
    /// worker drains or stops, the owner has <see cref="OwnerGrace"/> to close the websocket itself;
    /// if it does not (it goes on serving), the client gets a close frame 1000 at the next frame's
    /// edge, what SignalR's own server sends when it stops, so the client reconnects (SignalR's
    /// .NET client treats any other status as an error), and the owner's end is dropped.
    /// </summary>
    internal static async Task RelayAsync(Stream client, Stream owner, CancellationToken stopping)
    {
        var up = PumpAsync(client, owner);
        var down = PumpDownAsync(owner, client, stopping);
        await Task.WhenAny(up, down).ConfigureAwait(false);
        // Either end is done: the other goes too (its pump ends on the closed stream).
        await owner.DisposeAsync().ConfigureAwait(false);
        _ = up.ContinueWith(static t => t.Exception, TaskScheduler.Default);
        _ = down.ContinueWith(static t => t.Exception, TaskScheduler.Default);
    }

    private static async Task PumpAsync(Stream from, Stream to)
    {
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, read)).ConfigureAwait(false);
            await to.FlushAsync().ConfigureAwait(false);
        }
    }

    private static async Task PumpDownAsync(Stream owner, Stream client, CancellationToken stopping)
    {
        var buffer = new byte[16 * 1024];
        var frames = new WebSocketFrames();
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = stopping.Register(static s => _ = Task.Delay(OwnerGrace).ContinueWith(
            static (_, s) => ((TaskCompletionSource)s!).TrySetResult(), s, TaskScheduler.Default), stop);
        var stopped = stop.Task;
        Task<int>? read = null;
        while (true)
        {
            read ??= owner.ReadAsync(buffer).AsTask();
            await Task.WhenAny(read, stopped).ConfigureAwait(false);
            if (!read.IsCompleted && frames.AtBoundary && !frames.CloseSeen)
            {
                await client.WriteAsync(RelayCloseFrame).ConfigureAwait(false);
                await client.FlushAsync().ConfigureAwait(false);
                return;
            }
            var n = await read.ConfigureAwait(false);
            read = null;
            if (n == 0)
            {
                return;
            }
            await client.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
            await client.FlushAsync().ConfigureAwait(false);
            frames.Follow(buffer.AsSpan(0, n));
        }
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        // The request's host is "wPID": the worker's socket, never a DNS name.
        var pid = int.Parse(context.DnsEndPoint.Host.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(AffinityListener.SocketPath(_directory, pid)), ct).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose() => _invoker.Dispose();
}
