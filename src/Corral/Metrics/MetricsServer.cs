using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Corral.Metrics;

/// <summary>
/// `--metrics-bind HOST:PORT`: a Kestrel server inside the master, on its own port (never on the
/// app's listeners): GET /metrics (Prometheus text), /status.json (the snapshot) and / (the status
/// page). Each request asks the master's loop for a snapshot and waits for it.
/// </summary>
public sealed class MetricsServer : IAsyncDisposable
{
    private static readonly TimeSpan SnapshotTimeout = TimeSpan.FromSeconds(5);

    private readonly WebApplication _app;
    private readonly MasterMetrics _metrics;
    private readonly Action<MasterEvent> _post;
    private readonly SemaphoreSlim _scrape = new(1, 1);

    private MetricsServer(WebApplication app, MasterMetrics metrics, Action<MasterEvent> post)
    {
        _app = app;
        _metrics = metrics;
        _post = post;
    }

    /// <summary>The address it listens on, with the port the kernel chose for port 0.</summary>
    public string Url { get; private set; } = "";

    public static async Task<MetricsServer> StartAsync(IPEndPoint endpoint, MasterMetrics metrics, Action<MasterEvent> post)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.Listen(endpoint);
            k.AddServerHeader = false;
        });
        var app = builder.Build();
        var server = new MetricsServer(app, metrics, post);
        app.Run(server.HandleAsync);
        await app.StartAsync().ConfigureAwait(false);
        server.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? endpoint.ToString();
        return server;
    }

    /// <summary>
    /// HOST:PORT (HOST an IP address, [IPv6], or localhost); null if unreadable. The port is looked at
    /// first: a text without one is not HOST:PORT, whatever its host.
    /// </summary>
    public static IPEndPoint? ParseBind(string text, out string? error)
    {
        error = null;
        var split = Listeners.HostPort.TrySplit(text, out var parts, out _);
        if (parts.Port is not { } portText || parts.Host.Length == 0 && !parts.Bracketed
            || !int.TryParse(portText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            error = $"'{text}' is not HOST:PORT (e.g. 127.0.0.1:9100)";
            return null;
        }
        if (!split)
        {
            error = $"'{text}': write an IPv6 address in brackets, [::1]:9100";
            return null;
        }
        if (parts.Host == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }
        if (!IPAddress.TryParse(parts.Host, out var ip))
        {
            error = $"'{text}': HOST must be an IP address or localhost";
            return null;
        }
        return new IPEndPoint(ip, port);
    }

    private async Task<MasterSnapshot?> SnapshotAsync(CancellationToken ct)
    {
        var reply = new TaskCompletionSource<MasterSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        _post(new MasterEvent.Observe(reply));
        try
        {
            return await reply.Task.WaitAsync(SnapshotTimeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var response = context.Response;
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }
        response.Headers.CacheControl = "no-store";
        switch (context.Request.Path.Value)
        {
            case "/metrics":
                {
                    var snapshot = await SnapshotAsync(context.RequestAborted).ConfigureAwait(false);
                    string text;
                    await _scrape.WaitAsync(context.RequestAborted).ConfigureAwait(false);
                    try
                    {
                        if (snapshot is not null)
                        {
                            _metrics.SetGauges(snapshot);
                        }
                        text = await _metrics.ExportAsync(context.RequestAborted).ConfigureAwait(false);
                    }
                    finally
                    {
                        _scrape.Release();
                    }
                    response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                    await response.WriteAsync(text, context.RequestAborted).ConfigureAwait(false);
                    break;
                }
            case "/status.json":
                {
                    var snapshot = await SnapshotAsync(context.RequestAborted).ConfigureAwait(false);
                    if (snapshot is null)
                    {
                        response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                        return;
                    }
                    response.ContentType = "application/json";
                    await response.WriteAsync(snapshot.ToJson(), context.RequestAborted).ConfigureAwait(false);
                    break;
                }
            case "/":
                response.ContentType = "text/html; charset=utf-8";
                response.Headers.ContentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'";
                await response.WriteAsync(StatusPage.Html, context.RequestAborted).ConfigureAwait(false);
                break;
            default:
                response.StatusCode = StatusCodes.Status404NotFound;
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(cts.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _scrape.Dispose();
    }
}
