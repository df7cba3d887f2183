using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Corral.Agent.Contract;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Corral.Agent.Http;

/// <summary>
/// Which peers may tell the worker who the client is (--forwarded-allow-ips) and how they say the
/// request came in over TLS (--secure-scheme-headers), as Gunicorn's settings of the same names.
/// A request from a trusted peer (a listed address, or any unix-socket peer) has its remote address
/// taken from X-Forwarded-For (the right-most address that is not itself a trusted proxy) and its
/// scheme from the scheme headers; from anyone else those headers change nothing.
/// </summary>
public sealed class ProxyTrust
{
    public const string DefaultAllowIps = ProxyOptions.DefaultAllowIps;

    /// <summary>Gunicorn's default secure_scheme_headers.</summary>
    public const string DefaultSecureSchemeHeaders = """{"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}""";

    private readonly bool _trustAll;
    private readonly List<(byte[] Network, int PrefixBits)> _networks;
    private readonly KeyValuePair<string, string>[] _schemeHeaders;

    private ProxyTrust(bool trustAll, List<(byte[], int)> networks, IReadOnlyDictionary<string, string> schemeHeaders)
    {
        _trustAll = trustAll;
        _networks = networks;
        _schemeHeaders = [.. schemeHeaders];
    }

    /// <summary>Builds the trust from the settings' text; throws <see cref="FormatException"/> with the reason.</summary>
    public static ProxyTrust Create(string? allowIps, IReadOnlyDictionary<string, string>? schemeHeaders)
    {
        if (!TryParseAllowIps(allowIps ?? DefaultAllowIps, out var all, out var networks, out var error))
        {
            throw new FormatException(error);
        }
        return new ProxyTrust(all, networks, schemeHeaders ?? new Dictionary<string, string>());
    }

    /// <summary>
    /// Parses a comma-separated list of IP addresses and CIDR networks ("127.0.0.1, 10.0.0.0/8, ::1"),
    /// or "*" for every peer. An empty list trusts only unix-socket peers.
    /// </summary>
    public static bool TryParseAllowIps(string text, out bool trustAll, out List<(byte[] Network, int PrefixBits)> networks, out string? error)
    {
        trustAll = false;
        networks = [];
        error = null;
        foreach (var raw in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (raw == "*")
            {
                trustAll = true;
                continue;
            }
            var slash = raw.IndexOf('/');
            var addressText = slash < 0 ? raw : raw[..slash];
            if (!IPAddress.TryParse(addressText, out var address) || addressText.Contains('%'))
            {
                error = $"'{raw}' is not an IP address or a CIDR network (e.g. 10.0.0.0/8)";
                return false;
            }
            address = Normalize(address);
            var bytes = address.GetAddressBytes();
            var maxBits = bytes.Length * 8;
            var bits = maxBits;
            if (slash >= 0 && (!int.TryParse(raw[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out bits) || bits > maxBits))
            {
                error = $"'{raw}': the prefix length must be 0 to {maxBits}";
                return false;
            }
            networks.Add((Mask(bytes, bits), bits));
        }
        return true;
    }

    /// <summary>Parses --secure-scheme-headers: a JSON object of header name to the value that means https.</summary>
    public static bool TryParseSchemeHeaders(string text, out Dictionary<string, string> headers, out string? error)
    {
        headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        error = null;
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = """expected a JSON object such as {"X-FORWARDED-PROTO": "https"}""";
                return false;
            }
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String || p.Name.Length == 0)
                {
                    error = $"the value of '{p.Name}' must be a string (the header value that means https)";
                    return false;
                }
                headers[p.Name] = p.Value.GetString()!;
            }
            return true;
        }
        catch (JsonException e)
        {
            error = "not valid JSON: " + e.Message.Split(". ")[0];
            return false;
        }
    }

    /// <summary>A unix-socket peer (null address) is trusted, as with Gunicorn; an IP peer if listed.</summary>
    public bool IsTrusted(IPAddress? peer)
    {
        if (peer is null || _trustAll)
        {
            return true;
        }
        var bytes = Normalize(peer).GetAddressBytes();
        foreach (var (network, bits) in _networks)
        {
            if (network.Length == bytes.Length && Matches(bytes, network, bits))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// The client's address from a trusted peer's X-Forwarded-For: walking from the right, the first
    /// address that is not a trusted proxy; the left-most if all are. Null when the header is absent
    /// or an entry that would decide is not an address ("unknown", an obfuscated id): then the peer
    /// address stands.
    /// </summary>
    public IPAddress? ClientFrom(StringValues forwardedFor)
    {
        var entries = new List<string>();
        foreach (var value in forwardedFor)
        {
            if (value is not null)
            {
                entries.AddRange(value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            }
        }
        IPAddress? client = null;
        for (var i = entries.Count - 1; i >= 0; i--)
        {
            if (ParseForwardedAddress(entries[i]) is not { } address)
            {
                return null;
            }
            client = address;
            if (!IsTrusted(address))
            {
                break;
            }
        }
        return client;
    }

    /// <summary>
    /// The scheme the scheme headers say ("https" or "http"), null if none is present, or an error when
    /// two of them disagree (Gunicorn answers 400 "Contradictory scheme headers").
    /// </summary>
    public (string? Scheme, string? Error) SchemeFrom(IHeaderDictionary headers)
    {
        string? scheme = null;
        foreach (var (name, secureValue) in _schemeHeaders)
        {
            if (!headers.TryGetValue(name, out var values))
            {
                continue;
            }
            foreach (var value in values)
            {
                var said = string.Equals(value?.Trim(), secureValue, StringComparison.Ordinal) ? "https" : "http";
                if (scheme is not null && scheme != said)
                {
                    return (null, "Contradictory scheme headers");
                }
                scheme = said;
            }
        }
        return (scheme, null);
    }

    /// <summary>
    /// Applies the trust to a request: from a trusted peer, sets the remote address and the scheme.
    /// Returns an error text when the request must be refused with 400.
    /// </summary>
    public string? Apply(HttpContext context)
    {
        var connection = context.Connection;
        if (!IsTrusted(connection.RemoteIpAddress))
        {
            return null;
        }
        var headers = context.Request.Headers;
        var (scheme, error) = SchemeFrom(headers);
        if (error is not null)
        {
            return error;
        }
        if (scheme is not null)
        {
            context.Request.Scheme = scheme;
        }
        if (headers.TryGetValue("X-Forwarded-For", out var forwardedFor) && ClientFrom(forwardedFor) is { } client)
        {
            connection.RemoteIpAddress = client;
            connection.RemotePort = 0;
        }
        return null;
    }

    /// <summary>An X-Forwarded-For entry: an address, [v6]:port, v4:port; null if none of these.</summary>
    internal static IPAddress? ParseForwardedAddress(string entry)
    {
        var text = entry.Trim().Trim('"');
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']');
            text = close > 0 ? text[1..close] : text;
        }
        else if (text.Count(c => c == ':') == 1)
        {
            text = text[..text.IndexOf(':')];
        }
        return IPAddress.TryParse(text, out var address) && !text.Contains('%') ? Normalize(address) : null;
    }

    private static IPAddress Normalize(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 && address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private static byte[] Mask(byte[] bytes, int bits)
    {
        var result = (byte[])bytes.Clone();
        for (var i = 0; i < result.Length; i++)
        {
            var keep = Math.Clamp(bits - i * 8, 0, 8);
            result[i] &= (byte)(0xFF << (8 - keep));
        }
        return result;
    }

    private static bool Matches(byte[] address, byte[] network, int bits)
    {
        var masked = Mask(address, bits);
        return masked.AsSpan().SequenceEqual(network);
    }
}
