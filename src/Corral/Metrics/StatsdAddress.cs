using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Corral.Listeners;

namespace Corral.Metrics;

/// <summary>
/// Where --statsd-host points: HOST[:PORT] (port 8125 when left out, as Gunicorn), [IPv6]:PORT, or
/// unix:PATH (also unix://PATH) for a unix datagram socket. Read and resolved by the master only: a
/// worker gets the resolved text (the agent's <c>StatsdClient</c> reads it).
/// </summary>
public sealed record StatsdAddress(string? Host, int Port, string? UnixPath)
{
    public const int DefaultPort = 8125;

    public static bool TryParse(string text, out StatsdAddress? address, out string? error)
    {
        address = null;
        error = null;
        text = text.Trim();
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            var rest = text["unix:".Length..];
            // Gunicorn reads unix:DIGITS as the host "unix" and that port (its own compatibility rule).
            if (rest.Length > 0 && rest.All(char.IsAsciiDigit))
            {
                return TryPort(rest, text, "unix", out address, out error);
            }
            var path = rest.StartsWith("//", StringComparison.Ordinal) ? rest[2..] : rest;
            if (path.Length == 0)
            {
                error = "unix: needs a socket path";
                return false;
            }
            address = new StatsdAddress(null, 0, path);
            return true;
        }
        HostPort.TrySplit(text, out var parts, out var problem);
        if (problem is HostPortProblem.UnclosedBracket or HostPortProblem.BareIPv6
            || parts.Bracketed && (!IPAddress.TryParse(parts.Host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6))
        {
            error = "an IPv6 address goes in brackets: [::1]:8125";
            return false;
        }
        if (problem == HostPortProblem.AfterBracket)
        {
            error = "expected [IPv6]:PORT";
            return false;
        }
        var (host, port) = (parts.Host, parts.Port);
        if (host.Length == 0 || host.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '/' or '[' or ']'))
        {
            error = "no host";
            return false;
        }
        return port is null
            ? Ok(new StatsdAddress(host, DefaultPort, null), out address)
            : TryPort(port, text, host, out address, out error);
    }

    private static bool Ok(StatsdAddress value, out StatsdAddress? address)
    {
        address = value;
        return true;
    }

    private static bool TryPort(string port, string text, string host, out StatsdAddress? address, out string? error)
    {
        address = null;
        error = null;
        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) || p is < 1 or > 65535)
        {
            error = $"'{text}' has no port from 1 to 65535";
            return false;
        }
        address = new StatsdAddress(host, p, null);
        return true;
    }

    /// <summary>
    /// Resolves the host once (an IPv4 address first, as Gunicorn sends over IPv4): the text a worker
    /// gets (IP:PORT, [IPv6]:PORT or unix:FULLPATH), so that no worker looks the name up again. The
    /// master does this on its loop (at start and at HUP), so a resolver that does not answer is given
    /// up on after <paramref name="timeout"/> (5 s if not given).
    /// </summary>
    public string Resolve(TimeSpan? timeout = null)
    {
        if (UnixPath is not null)
        {
            return "unix:" + Path.GetFullPath(UnixPath); // workers run in the app's folder
        }
        if (!IPAddress.TryParse(Host, out var ip))
        {
            IPAddress[] all;
            var limit = timeout ?? TimeSpan.FromSeconds(5);
            using var cts = new CancellationTokenSource(limit);
            try
            {
                all = Dns.GetHostAddressesAsync(Host!, cts.Token).WaitAsync(limit).GetAwaiter().GetResult();
            }
            catch (SocketException e)
            {
                throw new StatsdException($"cannot resolve {Host}: {e.Message}");
            }
            catch (Exception e) when (e is OperationCanceledException or TimeoutException)
            {
                throw new StatsdException($"cannot resolve {Host}: no answer within {limit.TotalSeconds:0.#} s");
            }
            ip = all.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                ?? all.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetworkV6)
                ?? throw new StatsdException($"cannot resolve {Host}: no address");
        }
        return new IPEndPoint(ip, Port).ToString();
    }
}
