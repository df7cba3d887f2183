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
        // A host in brackets must be an IP address; a bare one may also be a host name (checked below).
        if (!HostPort.TrySplit(text, out var parts, out var shape) && shape != HostPortProblem.AfterBracket)
        {
            error = "an IPv6 address goes in brackets: [::1]:8000";
            return false;
        }
        var host = parts.Host;
        var portText = parts.Port ?? (shape == HostPortProblem.AfterBracket ? "" : "8000");
        if (parts.Bracketed && !IPAddress.TryParse(host, out _))
        {
            error = $"'{host}' is not an IPv6 address";
            return false;
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
        else if (!IPAddress.TryParse(host, out _) && HostNameProblem(host) is { } problem)
        {
            error = problem;
            return false;
        }
        address = new BindAddress(BindKind.Tcp, host, port, null, -1);
        return true;
    }

    /// <summary>
    /// Why <paramref name="host"/> (not an IP address) cannot be a host name, or null: it may be one, and
    /// whether it resolves is learnt at bind time. A name whose last label is a number (300.1.1.1,
    /// 1.2.3.4.5) is a mistyped IPv4 address: no top-level domain is all digits (RFC 3696).
    /// </summary>
    public static string? HostNameProblem(string host)
    {
        var name = host.EndsWith('.') ? host[..^1] : host;
        var labels = name.Split('.');
        if (labels[^1].Length > 0 && labels[^1].All(char.IsAsciiDigit))
        {
            return $"'{host}' is not an IPv4 address (four numbers from 0 to 255, e.g. 127.0.0.1) nor a host name";
        }
        if (name.Length == 0 || name.Length > 253
            || labels.Any(l => l.Length is 0 or > 63 || l[0] == '-' || l[^1] == '-' || !l.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
        {
            return $"'{host}' is not a host name or an IP address (a host name is letters, digits and '-' in dot-separated labels)";
        }
        return null;
    }

    public override string ToString() => Kind switch
    {
        BindKind.Unix => "unix:" + Path,
        BindKind.Fd => "fd://" + Fd.ToString(CultureInfo.InvariantCulture),
        _ => Host.Contains(':') ? $"http://[{Host}]:{Port}" : $"http://{Host}:{Port}",
    };
}
