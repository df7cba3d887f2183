using System.Globalization;
using System.Text;

namespace Corral.Agent.Logging;

/// <summary>
/// Gunicorn's --access-logformat: Python %-style named atoms, e.g. <c>%(h)s "%(r)s" %(s)s</c>.
/// Atoms: h l u t r m U q H s B b f a T M D L p {header}i {header}o {variable}e. A missing value
/// is "-". Unlike Gunicorn, quotes, backslashes and control characters inside values are escaped
/// (\" \\ \xNN, U+2028/U+2029 as \u2028), so a header cannot forge a field or a line.
/// </summary>
public sealed class AccessLogFormat
{
    public const string GunicornDefault = "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"";

    private static readonly string[] Months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    private static readonly string[] SimpleAtoms = ["h", "l", "u", "t", "r", "m", "U", "q", "H", "s", "B", "b", "f", "a", "T", "M", "D", "L", "p"];

    private readonly List<Segment> _segments;

    private AccessLogFormat(List<Segment> segments) => _segments = segments;

    /// <summary>Parses a format; the error names the first thing it cannot read.</summary>
    public static bool TryParse(string format, out AccessLogFormat? result, out string? error)
    {
        var segments = new List<Segment>();
        var literal = new StringBuilder();
        var i = 0;
        while (i < format.Length)
        {
            var c = format[i];
            if (c != '%')
            {
                literal.Append(c);
                i++;
                continue;
            }
            if (i + 1 < format.Length && format[i + 1] == '%')
            {
                literal.Append('%');
                i += 2;
                continue;
            }
            if (i + 1 >= format.Length || format[i + 1] != '(')
            {
                result = null;
                error = $"a lone '%' at position {i}: atoms look like %(h)s, a literal percent is %%";
                return false;
            }
            var close = format.IndexOf(")s", i + 2, StringComparison.Ordinal);
            if (close < 0)
            {
                result = null;
                error = $"the atom at position {i} is not closed with ')s'";
                return false;
            }
            var name = format[(i + 2)..close];
            if (!IsKnownAtom(name))
            {
                result = null;
                error = $"unknown atom '%({name})s'; known: {string.Join(' ', SimpleAtoms)} {{header}}i {{header}}o {{variable}}e";
                return false;
            }
            if (literal.Length > 0)
            {
                segments.Add(new Segment(literal.ToString(), null));
                literal.Clear();
            }
            segments.Add(new Segment(null, name));
            i = close + 2;
        }
        if (literal.Length > 0)
        {
            segments.Add(new Segment(literal.ToString(), null));
        }
        result = new AccessLogFormat(segments);
        error = null;
        return true;
    }

    public static AccessLogFormat Parse(string format) =>
        TryParse(format, out var result, out var error) ? result! : throw new FormatException(error);

    private static bool IsKnownAtom(string name)
    {
        if (Array.IndexOf(SimpleAtoms, name) >= 0)
        {
            return true;
        }
        return name.Length > 3 && name[0] == '{' && name[^2] == '}' && name[^1] is 'i' or 'o' or 'e';
    }

    public string Format(AccessLogEntry e)
    {
        var sb = new StringBuilder(160);
        foreach (var s in _segments)
        {
            if (s.Literal is not null)
            {
                sb.Append(s.Literal);
            }
            else
            {
                AppendEscaped(sb, Atom(e, s.Atom!) ?? "-");
            }
        }
        return sb.ToString();
    }

    private static string? Atom(AccessLogEntry e, string atom)
    {
        var inv = CultureInfo.InvariantCulture;
        switch (atom)
        {
            case "h": return e.RemoteAddress;
            case "l": return "-";
            case "u": return BasicAuthUser(e.RequestHeader("Authorization"));
            case "t": return FormatTime(e.Start + e.Duration); // Gunicorn: the time the line is logged
            case "r": return $"{e.Method} {e.RawTarget} {e.Protocol}";
            case "m": return e.Method;
            case "U": return e.Path;
            case "q": return e.QueryString.StartsWith('?') ? e.QueryString[1..] : e.QueryString;
            case "H": return e.Protocol;
            case "s": return e.Status.ToString(inv);
            case "B": return e.BytesSent.ToString(inv);
            case "b": return e.BytesSent.ToString(inv); // Gunicorn's b is "0", not "-", for an empty body
            case "f": return e.RequestHeader("Referer");
            case "a": return e.RequestHeader("User-Agent");
            case "T": return ((long)e.Duration.TotalSeconds).ToString(inv);
            case "M": return ((long)e.Duration.TotalMilliseconds).ToString(inv);
            case "D": return ((long)(e.Duration.Ticks / 10)).ToString(inv);
            case "L": return string.Create(inv, $"{e.Duration.Ticks / 10 / 1_000_000}.{e.Duration.Ticks / 10 % 1_000_000:000000}"); // Gunicorn's "%d.%06d": truncated, as D
            case "p": return $"<{e.ProcessId}>";
        }
        var name = atom[1..^2];
        return atom[^1] switch
        {
            'i' => e.RequestHeader(name),
            'o' => e.ResponseHeader(name),
            _ => Environment.GetEnvironmentVariable(name),
        };
    }

    /// <summary>Apache's and Gunicorn's %t: [10/Oct/2000:13:55:36 -0700].</summary>
    public static string FormatTime(DateTimeOffset t) =>
        string.Create(CultureInfo.InvariantCulture,
            $"[{t.Day:00}/{Months[t.Month - 1]}/{t.Year:0000}:{t.Hour:00}:{t.Minute:00}:{t.Second:00} {AgentLog.FormatOffset(t.Offset)}]");

    internal static string? BasicAuthUser(string? authorization)
    {
        if (authorization is null || !authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(authorization[6..].Trim()));
            var colon = decoded.IndexOf(':');
            return colon > 0 ? decoded[..colon] : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static void AppendEscaped(StringBuilder sb, string value)
    {
        foreach (var c in value)
        {
            if (c == '"' || c == '\\')
            {
                sb.Append('\\').Append(c);
            }
            else if (char.IsControl(c))
            {
                // C0, DEL and C1 (U+0085 NEL ends a line for some readers).
                sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            }
            else if (c is '\u2028' or '\u2029')
            {
                sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }
    }

    private sealed record Segment(string? Literal, string? Atom);
}
