namespace Corral.Listeners;

/// <summary>What kept a text from being HOST[:PORT] or [IPv6][:PORT].</summary>
public enum HostPortProblem
{
    /// <summary>None: <see cref="HostPort.Host"/> and <see cref="HostPort.Port"/> hold the parts.</summary>
    None,

    /// <summary>[ with no ] after it.</summary>
    UnclosedBracket,

    /// <summary>Something other than :PORT after the ] ([::1]80).</summary>
    AfterBracket,

    /// <summary>Several colons outside brackets: an IPv6 address written bare (::1:80).</summary>
    BareIPv6,
}

/// <summary>
/// HOST:PORT and [IPv6]:PORT split into their parts, the one place that knows where a host ends:
/// -b (<see cref="BindAddress"/>), --metrics-bind (<see cref="Metrics.MetricsServer.ParseBind"/>) and
/// --statsd-host (<see cref="Metrics.StatsdAddress"/>) each apply their own rules to the parts (a
/// default port or none, host names or not) and word their own errors.
/// </summary>
/// <param name="Host">The host, without its brackets; may be empty (":80", "[]").</param>
/// <param name="Port">The text after the colon (may be empty or not a number), or null when there is no colon.</param>
/// <param name="Bracketed">The host was written in brackets.</param>
public readonly record struct HostPort(string Host, string? Port, bool Bracketed)
{
    /// <summary>
    /// Splits <paramref name="text"/> (already trimmed, with no scheme): [HOST]:PORT or [HOST] when it
    /// starts with [, else HOST:PORT or HOST at its only colon. False with the <paramref name="problem"/>
    /// when it has neither shape; <paramref name="parts"/> then holds what could be split, for a caller
    /// whose errors go by the port first.
    /// </summary>
    public static bool TrySplit(string text, out HostPort parts, out HostPortProblem problem)
    {
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']');
            if (close < 0)
            {
                parts = new HostPort(text[1..], null, true);
                problem = HostPortProblem.UnclosedBracket;
                return false;
            }
            var host = text[1..close];
            var rest = text[(close + 1)..];
            parts = new HostPort(host, rest.StartsWith(':') ? rest[1..] : null, true);
            problem = rest.Length == 0 || rest.StartsWith(':') ? HostPortProblem.None : HostPortProblem.AfterBracket;
            return problem == HostPortProblem.None;
        }
        var colon = text.LastIndexOf(':');
        parts = colon < 0 ? new HostPort(text, null, false) : new HostPort(text[..colon], text[(colon + 1)..], false);
        problem = colon >= 0 && text.IndexOf(':') != colon ? HostPortProblem.BareIPv6 : HostPortProblem.None;
        return problem == HostPortProblem.None;
    }
}
