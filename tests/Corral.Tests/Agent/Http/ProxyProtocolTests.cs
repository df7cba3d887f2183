using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Corral.Agent.Http;
using Microsoft.AspNetCore.Connections;

namespace Corral.Tests;

/// <summary>--proxy-protocol: the PROXY v1/v2 parser, and the connection middleware's trust rules.</summary>
public sealed class ProxyProtocolTests
{
    private static ReadOnlySequence<byte> Bytes(string ascii) => new(Encoding.ASCII.GetBytes(ascii));

    /// <summary>A v2 header: signature, version 2 + command, family + transport, length, the block.</summary>
    private static byte[] V2(int command, int family, int transport, byte[] block, int? declaredLength = null)
    {
        var header = new byte[16 + block.Length];
        new byte[] { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A }.CopyTo(header, 0);
        header[12] = (byte)(0x20 | command);
        header[13] = (byte)(family << 4 | transport);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), (ushort)(declaredLength ?? block.Length));
        block.CopyTo(header, 16);
        return header;
    }

    private static byte[] V2Inet(IPAddress source, int sourcePort, IPAddress destination, int destinationPort, byte[]? tlvs = null)
    {
        var block = new List<byte>();
        block.AddRange(source.GetAddressBytes());
        block.AddRange(destination.GetAddressBytes());
        block.Add((byte)(sourcePort >> 8));
        block.Add((byte)sourcePort);
        block.Add((byte)(destinationPort >> 8));
        block.Add((byte)destinationPort);
        block.AddRange(tlvs ?? []);
        return V2(1, source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 1 : 2, 1, [.. block]);
    }

    [Theory]
    [InlineData("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nGET / HTTP/1.1\r\n", "203.0.113.7", 56324, "192.0.2.1", 443)]
    [InlineData("PROXY TCP6 2001:db8::7 2001:db8::1 65535 80\r\n", "2001:db8::7", 65535, "2001:db8::1", 80)]
    [InlineData("PROXY TCP4 0.0.0.0 255.255.255.255 0 0\r\n", "0.0.0.0", 0, "255.255.255.255", 0)]
    public void V1_gives_the_source_and_destination(string text, string source, int sourcePort, string destination, int destinationPort)
    {
        Assert.Equal(ProxyHeaderStatus.Parsed, ProxyProtocol.TryParse(Bytes(text), out var header, out var error));
        Assert.Null(error);
        Assert.Equal(1, header.Version);
        Assert.Equal(text.IndexOf("\r\n", StringComparison.Ordinal) + 2, header.Length);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(source), sourcePort), header.Source);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(destination), destinationPort), header.Destination);
    }

    [Theory]
    [InlineData("PROXY UNKNOWN\r\n")]
    [InlineData("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n")]
    public void V1_unknown_keeps_the_peer(string text)
    {
        Assert.Equal(ProxyHeaderStatus.Parsed, ProxyProtocol.TryParse(Bytes(text), out var header, out _));
        Assert.Null(header.Source);
        Assert.Equal(text.Length, header.Length);
    }

    [Theory]
    [InlineData("")]
    [InlineData("P")]
    [InlineData("PROXY")]
    [InlineData("PROXY TCP4 203.0.113.7 192.0.2.1 56324 4")]
    [InlineData("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r")]
    public void A_truncated_v1_header_needs_more(string text) =>
        Assert.Equal(ProxyHeaderStatus.NeedMore, ProxyProtocol.TryParse(Bytes(text), out _, out _));

    [Theory]
    [InlineData("PROXY TCP4 203.0.113.7 192.0.2.1 56324\r\n")]            // a field missing
    [InlineData("PROXY TCP4  203.0.113.7 192.0.2.1 56324 443\r\n")]       // two spaces
    [InlineData("PROXY TCP5 203.0.113.7 192.0.2.1 56324 443\r\n")]        // no such protocol
    [InlineData("PROXY TCP4 2001:db8::7 192.0.2.1 56324 443\r\n")]        // v6 address in TCP4
    [InlineData("PROXY TCP6 203.0.113.7 2001:db8::1 56324 443\r\n")]      // v4 address in TCP6
    [InlineData("PROXY TCP4 203.0.113 192.0.2.1 56324 443\r\n")]          // not a dotted quad
    [InlineData("PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n")]        // port too large
    [InlineData("PROXY TCP4 203.0.113.7 192.0.2.1 -1 443\r\n")]           // not a port
    [InlineData("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\n")]          // LF without CR
    [InlineData("PROXY TCP4 203.0.113.7\t192.0.2.1 56324 443\r\n")]       // a control byte
    public void A_malformed_v1_header_is_invalid(string text)
    {
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(Bytes(text), out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void A_v1_line_over_107_bytes_is_invalid_even_without_its_end()
    {
        var text = "PROXY UNKNOWN " + new string('x', 200);
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(Bytes(text), out _, out var error));
        Assert.Contains("107", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]
    [InlineData("POST /visits HTTP/1.1\r\n")]
    [InlineData("PROX-Y")]
    [InlineData("\u0016\u0003\u0001")]  // a TLS ClientHello
    [InlineData("\r\n\r\nGET")]         // like v2's signature at first, then not
    public void Other_bytes_are_not_proxy(string text) =>
        Assert.Equal(ProxyHeaderStatus.NotProxy, ProxyProtocol.TryParse(Bytes(text), out _, out _));

    [Fact]
    public void V2_ipv4_and_ipv6_give_the_source_and_destination_and_skip_tlvs()
    {
        var v4 = V2Inet(IPAddress.Parse("203.0.113.7"), 56324, IPAddress.Parse("192.0.2.1"), 443, tlvs: [0x04, 0x00, 0x01, 0xAA]);
        var withHttp = v4.Concat(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\n")).ToArray();
        Assert.Equal(ProxyHeaderStatus.Parsed, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(withHttp), out var header, out _));
        Assert.Equal(2, header.Version);
        Assert.Equal(v4.Length, header.Length);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.7"), 56324), header.Source);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 443), header.Destination);

        var v6 = V2Inet(IPAddress.Parse("2001:db8::7"), 1, IPAddress.Parse("2001:db8::1"), 8443);
        Assert.Equal(ProxyHeaderStatus.Parsed, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(v6), out header, out _));
        Assert.Equal(16 + 36, header.Length);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::7"), 1), header.Source);
    }

    [Fact]
    public void V2_local_unspec_and_unix_keep_the_peer()
    {
        // LOCAL (a health check from the proxy itself), with an address block that is skipped.
        var local = V2(0, 1, 1, new byte[12]);
        Assert.Equal(ProxyHeaderStatus.Parsed, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(local), out var header, out _));
        Assert.Null(header.Source);
        Assert.Equal(28, header.Length);

        Assert.Equal(ProxyHeaderStatus.Parsed, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(V2(1, 0, 0, [])), out header, out _));
        Assert.Null(header.Source);
        Assert.Equal(ProxyHeaderStatus.Parsed, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(V2(1, 3, 1, new byte[216])), out header, out _));
        Assert.Null(header.Source);
        Assert.Equal(16 + 216, header.Length);
    }

    [Fact]
    public void A_truncated_v2_header_needs_more_at_every_length()
    {
        var full = V2Inet(IPAddress.Parse("203.0.113.7"), 56324, IPAddress.Parse("192.0.2.1"), 443);
        for (var n = 0; n < full.Length; n++)
        {
            Assert.Equal(ProxyHeaderStatus.NeedMore, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(full[..n]), out _, out _));
        }
        // The same header split over several segments parses.
        Assert.Equal(ProxyHeaderStatus.Parsed, ProxyProtocol.TryParse(Segmented(full, 5), out var header, out _));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.7"), 56324), header.Source);
    }

    [Fact]
    public void A_malformed_v2_header_is_invalid()
    {
        var good = V2Inet(IPAddress.Parse("203.0.113.7"), 1, IPAddress.Parse("192.0.2.1"), 2);
        var badVersion = (byte[])good.Clone();
        badVersion[12] = 0x11;
        var badCommand = (byte[])good.Clone();
        badCommand[12] = 0x22;
        var badFamily = (byte[])good.Clone();
        badFamily[13] = 0x41;
        var shortBlock = V2(1, 2, 1, new byte[12]); // IPv6 needs 36
        foreach (var bytes in new[] { badVersion, badCommand, badFamily, shortBlock })
        {
            Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryParse(new ReadOnlySequence<byte>(bytes), out _, out var error));
            Assert.StartsWith("PROXY v2", error, StringComparison.Ordinal);
        }
    }

    private static ReadOnlySequence<byte> Segmented(byte[] bytes, int size)
    {
        Segment? first = null, last = null;
        for (var i = 0; i < bytes.Length; i += size)
        {
            var memory = bytes.AsMemory(i, Math.Min(size, bytes.Length - i));
            if (first is null)
            {
                first = last = new Segment(memory, 0);
            }
            else
            {
                last = last!.Append(memory);
            }
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    // The middleware, on an in-memory connection.

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    /// <summary>Sends <paramref name="bytes"/> from <paramref name="peer"/>; returns whether HTTP was reached, what it read, the remote endpoint then, and the log.</summary>
    private static async Task<(bool Reached, string Read, EndPoint? Remote, List<string> Log)> RunAsync(string trustList, IPEndPoint? peer, byte[] bytes, bool complete = true)
    {
        var toServer = new Pipe();
        var fromServer = new Pipe();
        var context = new DefaultConnectionContext("c1", new Duplex(toServer.Reader, fromServer.Writer), new Duplex(fromServer.Reader, toServer.Writer))
        {
            RemoteEndPoint = peer,
        };
        var log = new List<string>();
        var reached = false;
        var rest = "";
        EndPoint? remote = null;
        var middleware = ProxyProtocol.Middleware(ProxyTrust.Create(trustList, null), TimeSpan.FromSeconds(2), log.Add)(async c =>
        {
            reached = true;
            remote = c.RemoteEndPoint;
            var result = await c.Transport.Input.ReadAtLeastAsync(1);
            rest = Encoding.ASCII.GetString(result.Buffer.ToArray());
            c.Transport.Input.AdvanceTo(result.Buffer.End);
        });
        await toServer.Writer.WriteAsync(bytes);
        if (complete)
        {
            await toServer.Writer.CompleteAsync();
        }
        await middleware(context);
        return (reached, rest, remote, log);
    }

    private static readonly IPEndPoint Proxy = new(IPAddress.Parse("10.0.0.5"), 40000);
    private static readonly IPEndPoint Stranger = new(IPAddress.Parse("198.51.100.9"), 40000);

    [Fact]
    public async Task A_trusted_peers_header_sets_the_remote_endpoint_and_is_consumed()
    {
        var (reached, rest, remote, log) = await RunAsync("10.0.0.0/8", Proxy, Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nGET / HTTP/1.1\r\n"));
        Assert.True(reached);
        Assert.Equal("GET / HTTP/1.1\r\n", rest);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.7"), 56324), remote);
        Assert.Empty(log);

        var v2 = V2Inet(IPAddress.Parse("2001:db8::7"), 5, IPAddress.Parse("2001:db8::1"), 6).Concat("GET"u8.ToArray()).ToArray();
        (reached, rest, remote, _) = await RunAsync("10.0.0.0/8", Proxy, v2);
        Assert.True(reached);
        Assert.Equal("GET", rest);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::7"), 5), remote);

        // A unix-socket peer counts as trusted; LOCAL keeps the peer.
        (reached, _, remote, _) = await RunAsync("10.0.0.0/8", Proxy, [.. V2(0, 0, 0, []), .. "GET"u8.ToArray()]);
        Assert.True(reached);
        Assert.Equal(Proxy, remote);
        (reached, _, remote, _) = await RunAsync("", null, Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\nGET"));
        Assert.True(reached);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.7"), 1), remote);
    }

    [Fact]
    public async Task A_trusted_peer_without_a_valid_header_is_closed_with_a_log_line()
    {
        var (reached, _, _, log) = await RunAsync("10.0.0.0/8", Proxy, Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\n\r\n"));
        Assert.False(reached);
        Assert.Contains("does not start with a PROXY protocol header", Assert.Single(log), StringComparison.Ordinal);

        (reached, _, _, log) = await RunAsync("10.0.0.0/8", Proxy, Encoding.ASCII.GetBytes("PROXY TCP4 nonsense\r\n"));
        Assert.False(reached);
        Assert.Contains("invalid PROXY protocol header", Assert.Single(log), StringComparison.Ordinal);

        (reached, _, _, log) = await RunAsync("10.0.0.0/8", Proxy, Encoding.ASCII.GetBytes("PROXY TCP4 203.0"));
        Assert.False(reached);
        Assert.Contains("ended inside a PROXY protocol header", Assert.Single(log), StringComparison.Ordinal);

        // Nothing at all, the connection left open: closed when the header timeout passes.
        (reached, _, _, log) = await RunAsync("10.0.0.0/8", Proxy, [], complete: false);
        Assert.False(reached);
        Assert.Contains("no PROXY protocol header within 2 s", Assert.Single(log), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_untrusted_peers_header_is_not_believed_but_its_plain_http_is_served()
    {
        var (reached, _, _, log) = await RunAsync("10.0.0.0/8", Stranger, Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nGET / HTTP/1.1\r\n"));
        Assert.False(reached);
        Assert.Contains("198.51.100.9:40000", Assert.Single(log), StringComparison.Ordinal);
        Assert.Contains("not believed", log[0], StringComparison.Ordinal);

        (reached, _, _, log) = await RunAsync("10.0.0.0/8", Stranger, V2Inet(IPAddress.Parse("203.0.113.7"), 1, IPAddress.Parse("192.0.2.1"), 2));
        Assert.False(reached);
        Assert.Single(log);

        var (served, rest, remote, quiet) = await RunAsync("10.0.0.0/8", Stranger, Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\n"));
        Assert.True(served);
        Assert.Equal("GET / HTTP/1.1\r\n", rest);
        Assert.Equal(Stranger, remote);
        Assert.Empty(quiet);
    }
}
