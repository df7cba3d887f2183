using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Http;

/// <summary>What <see cref="ProxyProtocol.TryParse"/> found at the start of a connection.</summary>
public enum ProxyHeaderStatus
{
    /// <summary>Too few bytes yet to tell, or the header is not complete.</summary>
    NeedMore,

    /// <summary>The bytes do not start with either PROXY signature (e.g. plain HTTP).</summary>
    NotProxy,

    /// <summary>A PROXY signature followed by something the spec does not allow.</summary>
    Invalid,

    /// <summary>A complete, valid header.</summary>
    Parsed,
}

/// <summary>
/// A PROXY protocol header. <see cref="Source"/> is null when the header carries no address to use
/// (v1 UNKNOWN, v2 LOCAL, v2 UNSPEC or UNIX families): the connection's own peer stands.
/// </summary>
public readonly record struct ProxyHeader(int Version, int Length, IPEndPoint? Source, IPEndPoint? Destination);

/// <summary>
/// HAProxy's PROXY protocol, versions 1 (text) and 2 (binary): a proxy that passes TCP through
/// (HAProxy, nginx's stream module, cloud load balancers) says at the start of each connection who
/// the client is. With --proxy-protocol, every connection from a peer in --forwarded-allow-ips must
/// start with a header, whose source address becomes the connection's remote address (the app's
/// <c>HttpContext.Connection.RemoteIpAddress</c>, the access log's <c>%(h)s</c>). A header from any
/// other peer is not believed: the connection is closed with a log line. Other peers' plain HTTP is
/// served as usual.
/// </summary>
public static class ProxyProtocol
{
    /// <summary>The v1 header's longest form, CRLF included (the spec's 107 bytes).</summary>
    public const int V1MaxLength = 107;

    private static ReadOnlySpan<byte> V1Signature => "PROXY "u8;

    private static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>Reads a header from the start of <paramref name="buffer"/>; on <see cref="ProxyHeaderStatus.Invalid"/>, <paramref name="error"/> says why.</summary>
    public static ProxyHeaderStatus TryParse(ReadOnlySequence<byte> buffer, out ProxyHeader header, out string? error)
    {
        header = default;
        error = null;
        if (buffer.IsEmpty)
        {
            return ProxyHeaderStatus.NeedMore;
        }
        Span<byte> start = stackalloc byte[16];
        start = start[..(int)Math.Min(buffer.Length, 16)];
        buffer.Slice(0, start.Length).CopyTo(start);
        if (StartsLike(start, V1Signature))
        {
            return start.Length < V1Signature.Length ? ProxyHeaderStatus.NeedMore
                : ParseV1(buffer.Slice(0, Math.Min(buffer.Length, V1MaxLength)).ToArray(), out header, out error);
        }
        if (StartsLike(start, V2Signature))
        {
            // A v2 header is at most 16 + 65535 bytes.
            return start.Length < 16 ? ProxyHeaderStatus.NeedMore
                : ParseV2(buffer.Slice(0, Math.Min(buffer.Length, 16 + ushort.MaxValue)).ToArray(), out header, out error);
        }
        return ProxyHeaderStatus.NotProxy;
    }

    /// <summary>True when the bytes so far agree with <paramref name="signature"/> (as far as either goes).</summary>
    private static bool StartsLike(ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> signature)
    {
        var n = Math.Min(bytes.Length, signature.Length);
        return n > 0 && bytes[..n].SequenceEqual(signature[..n]);
    }

    private static ProxyHeaderStatus ParseV1(ReadOnlySpan<byte> bytes, out ProxyHeader header, out string? error)
    {
        header = default;
        error = null;
        var end = bytes[..Math.Min(bytes.Length, V1MaxLength)].IndexOf("\r\n"u8);
        if (end < 0)
        {
            if (bytes.Length >= V1MaxLength)
            {
                error = $"a PROXY v1 line longer than {V1MaxLength} bytes";
                return ProxyHeaderStatus.Invalid;
            }
            var lf = bytes.IndexOf((byte)'\n');
            if (lf >= 0)
            {
                error = "a PROXY v1 line not ended by CRLF";
                return ProxyHeaderStatus.Invalid;
            }
            return ProxyHeaderStatus.NeedMore;
        }
        var line = bytes[..end];
        foreach (var b in line)
        {
            if (b is < 0x20 or > 0x7E)
            {
                error = "a PROXY v1 line with a byte that is not printable ASCII";
                return ProxyHeaderStatus.Invalid;
            }
        }
        var parts = Encoding.ASCII.GetString(line).Split(' ');
        var total = end + 2;
        if (parts.Length >= 2 && parts[1] == "UNKNOWN")
        {
            // The proxy does not know (or will not say) who the client is: the peer stands.
            header = new ProxyHeader(1, total, null, null);
            return ProxyHeaderStatus.Parsed;
        }
        if (parts.Length != 6 || parts[1] is not ("TCP4" or "TCP6"))
        {
            error = $"not a PROXY v1 line: '{Truncate(Encoding.ASCII.GetString(line))}' (expected PROXY TCP4|TCP6|UNKNOWN SRC DST SPORT DPORT)";
            return ProxyHeaderStatus.Invalid;
        }
        var family = parts[1] == "TCP4" ? System.Net.Sockets.AddressFamily.InterNetwork : System.Net.Sockets.AddressFamily.InterNetworkV6;
        if (!TryAddress(parts[2], family, out var source) || !TryAddress(parts[3], family, out var destination))
        {
            error = $"PROXY v1 addresses that are not {parts[1]} addresses: '{Truncate(parts[2])}', '{Truncate(parts[3])}'";
            return ProxyHeaderStatus.Invalid;
        }
        if (!TryPort(parts[4], out var sourcePort) || !TryPort(parts[5], out var destinationPort))
        {
            error = $"PROXY v1 ports that are not 0-65535: '{Truncate(parts[4])}', '{Truncate(parts[5])}'";
            return ProxyHeaderStatus.Invalid;
        }
        header = new ProxyHeader(1, total, new IPEndPoint(source, sourcePort), new IPEndPoint(destination, destinationPort));
        return ProxyHeaderStatus.Parsed;
    }

    private static ProxyHeaderStatus ParseV2(ReadOnlySpan<byte> bytes, out ProxyHeader header, out string? error)
    {
        header = default;
        error = null;
        if (bytes.Length < 16)
        {
            return ProxyHeaderStatus.NeedMore;
        }
        var version = bytes[12] >> 4;
        var command = bytes[12] & 0x0F;
        if (version != 2)
        {
            error = $"PROXY v2 signature with version {version}";
            return ProxyHeaderStatus.Invalid;
        }
        if (command > 1)
        {
            error = $"PROXY v2 command {command} (only LOCAL 0 and PROXY 1 exist)";
            return ProxyHeaderStatus.Invalid;
        }
        var family = bytes[13] >> 4;
        var transport = bytes[13] & 0x0F;
        var length = BinaryPrimitives.ReadUInt16BigEndian(bytes[14..16]);
        var total = 16 + length;
        if (bytes.Length < total)
        {
            return ProxyHeaderStatus.NeedMore;
        }
        if (command == 0)
        {
            // LOCAL: the proxy's own connection (a health check); the peer stands, the block is skipped.
            header = new ProxyHeader(2, total, null, null);
            return ProxyHeaderStatus.Parsed;
        }
        var block = bytes[16..total];
        switch (family)
        {
            case 1 or 2:
                var size = family == 1 ? 4 : 16;
                if (block.Length < 2 * size + 4)
                {
                    error = $"PROXY v2 address block of {block.Length} bytes, too short for {(family == 1 ? "IPv4" : "IPv6")}";
                    return ProxyHeaderStatus.Invalid;
                }
                if (transport > 2)
                {
                    error = $"PROXY v2 transport {transport}";
                    return ProxyHeaderStatus.Invalid;
                }
                var source = new IPAddress(block[..size]);
                var destination = new IPAddress(block[size..(2 * size)]);
                var sourcePort = BinaryPrimitives.ReadUInt16BigEndian(block[(2 * size)..]);
                var destinationPort = BinaryPrimitives.ReadUInt16BigEndian(block[(2 * size + 2)..]);
                header = new ProxyHeader(2, total, new IPEndPoint(source, sourcePort), new IPEndPoint(destination, destinationPort));
                return ProxyHeaderStatus.Parsed;
            case 0 or 3:
                // UNSPEC or a unix socket: no IP client to report; the peer stands.
                header = new ProxyHeader(2, total, null, null);
                return ProxyHeaderStatus.Parsed;
            default:
                error = $"PROXY v2 address family {family}";
                return ProxyHeaderStatus.Invalid;
        }
    }

    private static bool TryAddress(string text, System.Net.Sockets.AddressFamily family, out IPAddress address)
    {
        address = IPAddress.None;
        if (text.Length == 0 || text.Contains('%') || !IPAddress.TryParse(text, out var parsed) || parsed.AddressFamily != family)
        {
            return false;
        }
        // IPAddress.TryParse accepts "1" or "0x7f.1" as IPv4; the spec wants dotted quads.
        if (family == System.Net.Sockets.AddressFamily.InterNetwork && text.Count(c => c == '.') != 3)
        {
            return false;
        }
        address = parsed;
        return true;
    }

    private static bool TryPort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && text.Length <= 5 && port <= 65535;

    private static string Truncate(string text) => text.Length <= 60 ? text : text[..60] + "...";

    /// <summary>
    /// The Kestrel connection middleware: reads the header before anything else (TLS, HTTP) sees the
    /// bytes, checks the peer against <paramref name="trust"/>, and sets the connection's endpoints.
    /// </summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(ProxyTrust trust, TimeSpan headerTimeout, Action<string> log) =>
        next => async context =>
        {
            if (await ReadHeaderAsync(context, trust, headerTimeout, log).ConfigureAwait(false))
            {
                await next(context).ConfigureAwait(false);
            }
        };

    /// <summary>True when the connection may go on to HTTP; false when it is to be closed (and was logged).</summary>
    private static async Task<bool> ReadHeaderAsync(ConnectionContext context, ProxyTrust trust, TimeSpan headerTimeout, Action<string> log)
    {
        var peerEndPoint = context.RemoteEndPoint as IPEndPoint;
        var peer = peerEndPoint is null ? "a unix-socket peer" : peerEndPoint.ToString();
        var trusted = trust.IsTrusted(peerEndPoint?.Address);
        var input = context.Transport.Input;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.ConnectionClosed);
        timeout.CancelAfter(headerTimeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                if (trusted && !context.ConnectionClosed.IsCancellationRequested)
                {
                    log($"Closing the connection from {peer}: no PROXY protocol header within {headerTimeout.TotalSeconds:0.#} s");
                }
                return false;
            }
            var buffer = result.Buffer;
            var status = TryParse(buffer, out var header, out var error);
            if (status == ProxyHeaderStatus.NeedMore && !result.IsCompleted)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                continue;
            }
            switch (status)
            {
                case ProxyHeaderStatus.NotProxy when !trusted:
                    // An ordinary client: its bytes are HTTP (or TLS), untouched.
                    input.AdvanceTo(buffer.Start);
                    return true;
                case ProxyHeaderStatus.NotProxy:
                    input.AdvanceTo(buffer.Start);
                    log($"Closing the connection from {peer}: --proxy-protocol is on and the peer is in --forwarded-allow-ips, but the connection does not start with a PROXY protocol header");
                    return false;
                case ProxyHeaderStatus.NeedMore:
                    // The peer closed before a whole header (or before sending anything at all).
                    input.AdvanceTo(buffer.Start, buffer.End);
                    if (!buffer.IsEmpty)
                    {
                        log($"Closing the connection from {peer}: it ended inside a PROXY protocol header");
                    }
                    return false;
                case ProxyHeaderStatus.Invalid:
                    input.AdvanceTo(buffer.Start, buffer.End);
                    log($"Closing the connection from {peer}: invalid PROXY protocol header: {error}");
                    return false;
                default:
                    if (!trusted)
                    {
                        input.AdvanceTo(buffer.Start, buffer.End);
                        log($"Closing the connection from {peer}: a PROXY protocol header from a peer not in --forwarded-allow-ips is not believed");
                        return false;
                    }
                    input.AdvanceTo(buffer.GetPosition(header.Length));
                    if (header.Source is not null)
                    {
                        context.RemoteEndPoint = header.Source;
                        context.LocalEndPoint = header.Destination;
                        if (context.Features.Get<IHttpConnectionFeature>() is { } http)
                        {
                            http.RemoteIpAddress = header.Source.Address;
                            http.RemotePort = header.Source.Port;
                            http.LocalIpAddress = header.Destination!.Address;
                            http.LocalPort = header.Destination.Port;
                        }
                    }
                    return true;
            }
        }
    }
}
