using System.Globalization;
using System.Text;

namespace Corral.Agent.Metrics;

/// <summary>The statsd line protocol, as Gunicorn writes it.</summary>
public static class StatsdFormat
{
    /// <summary>
    /// --statsd-prefix with exactly one '.' at its end ("app", "app." and "app.." all give "app."), as
    /// Gunicorn normalises it; an empty prefix stays empty.
    /// </summary>
    public static string NormalizePrefix(string? prefix)
    {
        var trimmed = (prefix ?? "").Trim().TrimEnd('.');
        return trimmed.Length == 0 ? "" : trimmed + ".";
    }

    /// <summary>Why a prefix would break the line protocol; null if it is fine.</summary>
    public static string? CheckPrefix(string prefix) =>
        prefix.Any(c => c is ':' or '|' or '@' or '#' || char.IsWhiteSpace(c) || char.IsControl(c) || c > '~')
            ? "a prefix may not hold ':', '|', '@', '#', spaces or non-ASCII characters"
            : null;

    /// <summary>Why --dogstatsd-tags would break the line protocol; null if it is fine.</summary>
    public static string? CheckTags(string tags) =>
        tags.Any(c => c is '|' || char.IsWhiteSpace(c) || char.IsControl(c) || c > '~')
            ? "tags may not hold '|', spaces or non-ASCII characters"
            : null;

    /// <summary>
    /// One metric: PREFIXNAME:VALUE|TYPE, and |#TAGS (DogStatsD) when there are tags. TYPE: c, g or ms.
    /// </summary>
    public static string Line(string prefix, string name, string value, string type, string? tags) =>
        string.IsNullOrEmpty(tags) ? $"{prefix}{name}:{value}|{type}" : $"{prefix}{name}:{value}|{type}|#{tags}";

    /// <summary>Milliseconds as Gunicorn sends a duration: a decimal number, to the microsecond.</summary>
    public static string Milliseconds(double ms) => ms.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>
    /// Packs lines into datagrams of at most <paramref name="maxBytes"/> bytes, lines separated by '\n'
    /// (the multi-metric packet statsd, Telegraf, the Datadog agent and statsd_exporter read). A line
    /// longer than the limit on its own goes alone.
    /// </summary>
    public static List<byte[]> Pack(IEnumerable<string> lines, int maxBytes)
    {
        var datagrams = new List<byte[]>();
        var current = new MemoryStream();
        foreach (var line in lines)
        {
            var bytes = Encoding.UTF8.GetBytes(line);
            if (current.Length > 0 && current.Length + 1 + bytes.Length > maxBytes)
            {
                datagrams.Add(current.ToArray());
                current.SetLength(0);
            }
            if (current.Length > 0)
            {
                current.WriteByte((byte)'\n');
            }
            current.Write(bytes);
        }
        if (current.Length > 0)
        {
            datagrams.Add(current.ToArray());
        }
        return datagrams;
    }
}
