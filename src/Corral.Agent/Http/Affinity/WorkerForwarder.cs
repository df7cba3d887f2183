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
        var upgrading = upgrade is { IsUpgradableRequest: true };
        using var request = BuildRequest(context, pid, upgrading);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, upgrading ? default : _stopping);
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
        using (response)
        {
            if (upgrading && response.StatusCode == HttpStatusCode.SwitchingProtocols)
            {
                CopyResponseHead(context, response);
                var client = await upgrade!.UpgradeAsync().ConfigureAwait(false);
                var owner = await response.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
                await using (owner.ConfigureAwait(false))
                {
                    await RelayAsync(client, owner, _stopping).ConfigureAwait(false);
                }
                return;
            }
            CopyResponseHead(context, response);
            await CopyBodyAsync(context, response, cancel.Token).ConfigureAwait(false);
        }
    }

    private static async Task GoneAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        context.Response.ContentType = "text/plain";
        await context.Response.WriteAsync("No Connection with that ID").ConfigureAwait(false);
    }

    private HttpRequestMessage BuildRequest(HttpContext context, int pid, bool upgrading)
    {
        var incoming = context.Request;
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(target) || target[0] != '/')
        {
            target = (incoming.PathBase + incoming.Path + incoming.QueryString).ToString();
        }
        var request = new HttpRequestMessage(new HttpMethod(incoming.Method), new Uri("http://w" + pid.ToString(CultureInfo.InvariantCulture) + target))
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
            if (HopByHop.Contains(name) || HopConnection.IsHopHeader(name))
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
            request.Headers.TryAddWithoutValidation("Upgrade", (IEnumerable<string?>)incoming.Headers.Upgrade);
        }
        if (incoming.Host.HasValue)
        {
            request.Headers.Host = incoming.Host.Value;
        }
        HopConnection.Describe(context, (name, value) => request.Headers.TryAddWithoutValidation(name, value));
        return request;
    }

    private static void CopyResponseHead(HttpContext context, HttpResponseMessage response)
    {
        var outgoing = context.Response;
        outgoing.StatusCode = (int)response.StatusCode;
        foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
        {
            // Upgrade is the handshake's: it goes to the client with the 101.
            if (HopByHop.Contains(name) && !(name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase) && response.StatusCode == HttpStatusCode.SwitchingProtocols))
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

    /// <summary>
    /// Relays an upgraded connection until either end closes it, then closes the other. When this
    /// worker drains or stops, the client gets a close frame 1001 (going away) at the next frame's
    /// edge, and reconnects; the owner's end is dropped.
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
        var frames = new FrameBoundary();
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = stopping.Register(static s => ((TaskCompletionSource)s!).TrySetResult(), stop);
        var stopped = stop.Task;
        Task<int>? read = null;
        while (true)
        {
            read ??= owner.ReadAsync(buffer).AsTask();
            await Task.WhenAny(read, stopped).ConfigureAwait(false);
            if (!read.IsCompleted && frames.AtBoundary)
            {
                await client.WriteAsync(FrameBoundary.CloseFrame(1001)).ConfigureAwait(false);
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
            frames.Advance(buffer.AsSpan(0, n));
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
