using System.Net.WebSockets;
using Corral.Agent.Http;

namespace Corral.Tests;

/// <summary>
/// Following websocket frames (the app's writes under drain, the bytes through an affinity relay), on
/// frames made by .NET's own websocket.
/// </summary>
public sealed class WebSocketFramesTests
{
    /// <summary>The bytes a server-side (unmasked) or client-side (masked) WebSocket writes for <paramref name="messages"/>.</summary>
    private static async Task<byte[]> FramesAsync(bool client, params (int Size, bool EndOfMessage)[] messages)
    {
        var wire = new MemoryStream();
        using var ws = WebSocket.CreateFromStream(wire, new WebSocketCreationOptions { IsServer = !client, KeepAliveInterval = TimeSpan.Zero });
        foreach (var (size, end) in messages)
        {
            await ws.SendAsync(new byte[size], WebSocketMessageType.Binary, end, CancellationToken.None);
        }
        return wire.ToArray();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WholeFramesEndOnABoundaryWhateverTheChunks(bool masked)
    {
        // 7-bit, 16-bit and 64-bit lengths, an empty frame, and a message in two frames.
        var bytes = await FramesAsync(masked, (5, true), (0, true), (300, true), (70_000, true), (10, false), (10, true));
        foreach (var chunk in new[] { 1, 3, 7, 1000, bytes.Length })
        {
            var frames = new WebSocketFrames();
            for (var at = 0; at < bytes.Length; at += chunk)
            {
                frames.Follow(bytes.AsSpan(at, Math.Min(chunk, bytes.Length - at)));
            }
            Assert.True(frames.AtBoundary, $"chunks of {chunk}");
        }
    }

    [Fact]
    public async Task InsideAFrameIsNotABoundary()
    {
        var bytes = await FramesAsync(false, (300, true), (5, true));
        var frames = new WebSocketFrames();
        frames.Follow(bytes.AsSpan(0, 1)); // half a header
        Assert.False(frames.AtBoundary);
        frames.Follow(bytes.AsSpan(1, 10)); // header done, payload under way
        Assert.False(frames.AtBoundary);
        frames.Follow(bytes.AsSpan(11, 4 + 300 - 11)); // the first frame's end (4-byte header)
        Assert.True(frames.AtBoundary);
        frames.Follow(bytes.AsSpan(304, bytes.Length - 304 - 1));
        Assert.False(frames.AtBoundary);
    }

    [Fact]
    public async Task TheRelaysCloseFrameIsOneAClientReadsAsItsStatus()
    {
        var wire = new MemoryStream(WebSocketFrameStream.CloseFrame(1000, ""));
        using var ws = WebSocket.CreateFromStream(wire, new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero });
        var result = await ws.ReceiveAsync(new byte[16], CancellationToken.None);
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, result.CloseStatus);
    }

    [Fact]
    public void ACloseFrameIsSeenOnceItsHeaderIsIn()
    {
        var frames = new WebSocketFrames();
        frames.Follow([0x81, 0x02, (byte)'h']); // text, 2 bytes, half of it
        Assert.False(frames.CloseSeen);
        frames.Follow([(byte)'i']);
        Assert.False(frames.CloseSeen);
        frames.Follow(WebSocketFrameStream.CloseFrame(1000, "").AsSpan(0, 1));
        Assert.False(frames.CloseSeen); // half a header
        frames.Follow(WebSocketFrameStream.CloseFrame(1000, "").AsSpan(1));
        Assert.True(frames.CloseSeen);
        Assert.True(frames.AtBoundary);
    }
}
