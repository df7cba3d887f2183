using System.Globalization;
using System.Net.WebSockets;
using Microsoft.AspNetCore.SignalR;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddSignalR();
var app = builder.Build();
app.UseWebSockets();

var pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
app.MapGet("/pid", () => pid);
app.MapHub<EchoHub>("/hub");

// A websocket echo that knows nothing of shutdown: it loops until the client closes.
app.Map("/ws/echo", async (HttpContext context) =>
{
    if (!context.WebSockets.IsWebSocketRequest)
    {
        return Results.BadRequest();
    }
    using var ws = await context.WebSockets.AcceptWebSocketAsync();
    await EchoAsync(ws, CancellationToken.None, static () => true);
    return Results.Empty;
});

// A websocket echo that obeys the host's stopping signal: it says "going away" (1001) itself.
app.Map("/ws/polite", async (HttpContext context, IHostApplicationLifetime lifetime) =>
{
    if (!context.WebSockets.IsWebSocketRequest)
    {
        return Results.BadRequest();
    }
    using var ws = await context.WebSockets.AcceptWebSocketAsync();
    // On the stopping signal: our close frame (1001), then go on receiving until the client's close.
    var closing = 0;
    using var stopping = lifetime.ApplicationStopping.Register(() =>
    {
        if (Interlocked.Exchange(ref closing, 1) == 0)
        {
            _ = ws.CloseOutputAsync(WebSocketCloseStatus.EndpointUnavailable, "server stopping", CancellationToken.None);
        }
    });
    await EchoAsync(ws, CancellationToken.None, () => Interlocked.Exchange(ref closing, 1) == 0);
    return Results.Empty;
});

app.Run();

// closeFirst: false once the handler has sent its own close frame (the close is not answered twice).
static async Task EchoAsync(WebSocket ws, CancellationToken token, Func<bool> closeFirst)
{
    var buffer = new byte[16 * 1024];
    while (true)
    {
        var result = await ws.ReceiveAsync(buffer, token);
        if (result.MessageType == WebSocketMessageType.Close)
        {
            if (closeFirst())
            {
                await ws.CloseOutputAsync(result.CloseStatus ?? WebSocketCloseStatus.NormalClosure, result.CloseStatusDescription, CancellationToken.None);
            }
            return;
        }
        if (ws.State != WebSocketState.Open)
        {
            continue; // our close is sent: no more echoes
        }
        await ws.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, token);
    }
}

/// <summary>Echo returns its argument; Pid names the worker process that holds the connection.</summary>
public sealed class EchoHub : Hub
{
    public string Echo(string message) => message;

    public int Pid() => Environment.ProcessId;
}
