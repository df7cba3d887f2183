using System.Globalization;
using System.Net;

namespace Corral.Listeners;

public enum BindKind { Tcp, Unix, Fd }

/// <summary>One -b/--bind value: HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N.</summary>
public sealed record BindAddress(BindKind Kind, string Host, int Port, string? Path, int Fd)
{
    public static bool TryParse(string text, out BindAddress? address, out string? error)
    {
        address = null;
        error = null;
        text = text.Trim();
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = text["unix:".Length..];
            if (path.StartsWith("//", StringComparison.Ordinal))
            {
                path = path[2..];
            }
            if (path.Length == 0)
            {
                error = "unix: needs a path, e.g. unix:/run/corral.sock";
                return false;
            }
            address = new BindAddress(BindKind.Unix, "", 0, path, -1);
            return true;
        }
        if (text.StartsWith("fd://", StringComparison.Ordinal))
        {
            if (!int.TryParse(text["fd://".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var fd) || fd < 0)
            {
                error = "fd:// needs a descriptor number, e.g. fd://3";
                return false;
            }
            address = new BindAddress(BindKind.Fd, "", 0, null, fd);
            return true;
        }
        if (text.StartsWith("tcp://", StringComparison.Ordinal))
        {
            text = text["tcp://".Length..];
        }
        string host;
        string portText;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']');
            if (close < 0)
            {
                error = "an IPv6 address goes in brackets: [::1]:8000";
                return false;
            }
            host = text[1..close];
            var rest = text[(close + 1)..];
            portText = rest.StartsWith(':') ? rest[1..] : rest.Length == 0 ? "8000" : "";
            if (!IPAddress.TryParse(host, out _))
            {
                error = $"'{host}' is not an IPv6 address";
                return false;
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon >= 0 && text.IndexOf(':') != colon)
            {
                error = "an IPv6 address goes in brackets: [::1]:8000";
                return false;
            }
            host = colon < 0 ? text : text[..colon];
            portText = colon < 0 ? "8000" : text[(colon + 1)..];
        }
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            error = $"'{portText}' is not a port (0-65535)";
            return false;
        }
        if (host.Length == 0)
        {
            host = "0.0.0.0";
        }
        address = new BindAddress(BindKind.Tcp, host, port, null, -1);
        return true;
    }

    public override string ToString() => Kind switch
    {
        BindKind.Unix => "unix:" + Path,
        BindKind.Fd => "fd://" + Fd.ToString(CultureInfo.InvariantCulture),
        _ => Host.Contains(':') ? $"http://[{Host}]:{Port}" : $"http://{Host}:{Port}",
    };
}
