using System.Globalization;

namespace Corral.Agent.Http.Affinity;

/// <summary>
/// The mark a worker puts before the SignalR connection tokens it issues: its pid and '~'
/// ("4242~Vh3x..."). '~' is unreserved in URLs, so clients send it as is, and it is never in
/// SignalR's base64url tokens; a client that escapes it anyway sends "%7E", read the same.
/// </summary>
internal static class AffinityMarker
{
    public const char Separator = '~';

    /// <summary>"PID~TOKEN".</summary>
    public static string Format(int pid, string token) =>
        pid.ToString(CultureInfo.InvariantCulture) + Separator + token;

    /// <summary>
    /// Reads the mark at the start of <paramref name="value"/> (a raw, still escaped query value):
    /// the pid, and how many characters the mark takes ("4242~" 5, "4242%7E" 7). False: no mark.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> value, out int pid, out int length)
    {
        pid = 0;
        length = 0;
        var digits = 0;
        while (digits < value.Length && char.IsAsciiDigit(value[digits]))
        {
            digits++;
        }
        if (digits is 0 or > 10 || !int.TryParse(value[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out pid) || pid <= 0)
        {
            pid = 0;
            return false;
        }
        var rest = value[digits..];
        if (rest.Length > 0 && rest[0] == Separator)
        {
            length = digits + 1;
            return true;
        }
        if (rest.StartsWith("%7E", StringComparison.OrdinalIgnoreCase))
        {
            length = digits + 3;
            return true;
        }
        pid = 0;
        return false;
    }
}
