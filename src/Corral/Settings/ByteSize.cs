using System.Globalization;

namespace Corral.Settings;

/// <summary>
/// A memory size as the settings take it: plain bytes, or a number with K, M, G or T, written alone,
/// with B (KB, MB, GB, TB) or with iB (KiB, MiB, GiB, TiB), any case. Every unit counts in powers of
/// 1024, as Docker's, PM2's and uWSGI's sizes do: 512MB = 512M = 512MiB = 536,870,912 bytes.
/// </summary>
public static class ByteSize
{
    /// <summary>What the error messages and the docs say is accepted.</summary>
    public const string Accepted = "a size such as 512MB, 512M, 1G, 1GB, 300MiB or plain bytes (units count in 1024s; 0: off)";

    /// <summary>The size in bytes; null if the text is not one (negative, a fraction of a byte, an unknown unit, too large).</summary>
    public static long? Parse(string text)
    {
        var s = text.Trim();
        var i = 0;
        while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
        {
            i++;
        }
        if (i == 0 || !decimal.TryParse(s[..i], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
        {
            return null;
        }
        long multiplier = s[i..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => 1L << 10,
            "M" or "MB" or "MIB" => 1L << 20,
            "G" or "GB" or "GIB" => 1L << 30,
            "T" or "TB" or "TIB" => 1L << 40,
            _ => 0,
        };
        if (multiplier == 0 || (multiplier == 1 && number != decimal.Truncate(number)))
        {
            return null;
        }
        var bytes = number * multiplier;
        return bytes > long.MaxValue ? null : (long)decimal.Truncate(bytes);
    }

    /// <summary>Bytes in MiB, for log lines: "612.3 MiB".</summary>
    public static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:0.#} MiB");
}
