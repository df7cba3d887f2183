using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using Corral.Agent.Http;

namespace Corral.Tests;

/// <summary>
/// Corral's own close frame on a real .NET server websocket (over a loopback TCP pair), read by a
/// real .NET client websocket: it goes out between the app's frames, never twice, and whatever the
/// app sends after it is dropped.
/// </summary>
public sealed class WebSocketFrameStreamTests : IAsyncDisposable
{
    private readonly Socket _serverSocket;
    private readonly Socket _clientSocket;
    private readonly WebSocketFrameStream _stream;
    private readonly WebSocket _server;
    private readonly WebSocket _client;

    public WebSocketFrameStreamTests()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        _clientSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _clientSocket.Connect(listener.LocalEndPoint!);
        _serverSocket = listener.Accept();
        _stream = new WebSocketFrameStream(new NetworkStream(_serverSocket, ownsSocket: true), () => true);
        _server = WebSocket.CreateFromStream(_stream, isServer: true, subProtocol: null, keepAliveInterval: Timeout.InfiniteTimeSpan);
        _client = WebSocket.CreateFromStream(new NetworkStream(_clientSocket, ownsSocket: true), isServer: false, subProtocol: null, keepAliveInterval: Timeout.InfiniteTimeSpan);
    }

    public async ValueTask DisposeAsync()
    {
        _server.Dispose();
        _client.Dispose();
        await _stream.DisposeAsync();
    }

    [Fact]
    public async Task GoingAwayComesBetweenTheAppsFramesAndWhatFollowsIsDropped()
    {
        var payload = new byte[100_000]; // 200 of them: more than the socket buffers hold
        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                await _server.SendAsync(payload, WebSocketMessageType.Binary, endOfMessage: i == 199, CancellationToken.None);
            }
        });
        var received = 0L;
        var buffer = new byte[64 * 1024];
        var first = await _client.ReceiveAsync(buffer, CancellationToken.None);
        received += first.Count;
        // Asked while the app's send may hold the stream, blocked on a full socket: the client goes on
        // reading (as a real one does), so that send ends and the close follows it.
        var goingAway = _stream.SendGoingAwayAsync(CancellationToken.None);
        WebSocketReceiveResult result;
        do
        {
            result = await _client.ReceiveAsync(buffer, CancellationToken.None);
            received += result.Count;
        }
        while (result.MessageType != WebSocketMessageType.Close);
        Assert.True(await goingAway);
        await sending; // the app's sends after the close succeed, and go nowhere
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, result.CloseStatus);
        Assert.Equal(0, received % payload.Length); // whole frames only: the close never cut one
        Assert.True(received < 200L * payload.Length);
        Assert.True(_stream.CloseSent);
    }

    [Fact]
    public async Task NoCloseOfCorralsOnceTheAppHasClosed()
    {
        await _server.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        Assert.True(_stream.CloseSent);
        Assert.False(await _stream.SendGoingAwayAsync(CancellationToken.None));
        var result = await _client.ReceiveAsync(new byte[1024], CancellationToken.None);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, result.CloseStatus);
        Assert.Equal("bye", result.CloseStatusDescription);
    }
}
