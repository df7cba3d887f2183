using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;

namespace Corral.Agent.Http.Affinity;

/// <summary>
/// Marks a connection that came in on the worker's private forwarding socket (<see cref="AffinityListener"/>):
/// only there are the hop headers, which carry the client as the forwarding worker saw it, believed.
/// </summary>
internal sealed class HopConnection
{
    public static readonly HopConnection Instance = new();

    /// <summary>The client's address (absent: a unix-socket peer), its port, and the scheme it used.</summary>
    public const string ForHeader = "Corral-Hop-For";
    public const string PortHeader = "Corral-Hop-Port";
    public const string ProtoHeader = "Corral-Hop-Proto";

    /// <summary>The private listener's connection middleware: marks each connection.</summary>
    public static ConnectionDelegate Mark(ConnectionDelegate next) => connection =>
    {
        connection.Features.Set(Instance);
        return next(connection);
    };

    public static bool IsHopHeader(string name) => name.StartsWith("Corral-Hop-", StringComparison.OrdinalIgnoreCase);

    /// <summary>The forwarding worker's side: says who the client is.</summary>
    public static void Describe(HttpContext context, Action<string, string> add)
    {
        if (context.Connection.RemoteIpAddress is { } address)
        {
            add(ForHeader, address.ToString());
            add(PortHeader, context.Connection.RemotePort.ToString(CultureInfo.InvariantCulture));
        }
        add(ProtoHeader, context.Request.Scheme);
    }

    /// <summary>The owner's side: the request looks as it did to the worker the client reached; the hop headers go.</summary>
    public static void Apply(HttpContext context)
    {
        var headers = context.Request.Headers;
        var connection = context.Connection;
        connection.RemoteIpAddress = IPAddress.TryParse(headers[ForHeader].ToString(), out var address) ? address : null;
        connection.RemotePort = int.TryParse(headers[PortHeader].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : 0;
        var scheme = headers[ProtoHeader].ToString();
        if (scheme is "http" or "https")
        {
            context.Request.Scheme = scheme;
        }
        headers.Remove(ForHeader);
        headers.Remove(PortHeader);
        headers.Remove(ProtoHeader);
    }
}
