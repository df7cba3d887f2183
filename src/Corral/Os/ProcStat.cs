using System.Globalization;

namespace Corral.Os;

/// <summary>
/// /proc/PID/stat, the fields the master reads: the start time (field 22, the key in the runtime's
/// file names: <see cref="RuntimeFiles"/>) and the CPU a process has used (utime + stime, fields 14
/// and 15: what a worker's boot cost).
/// </summary>
public static partial class ProcStat
{
    private const int SC_CLK_TCK = 2;

    [System.Runtime.InteropServices.LibraryImport("libc")]
    private static partial long sysconf(int name);

    /// <summary>Clock ticks per second, the unit of the time fields (100 on Linux almost everywhere).</summary>
    public static readonly long ClockTicks = sysconf(SC_CLK_TCK) is > 0 and var t ? t : 100;

    /// <summary>The line, or null once /proc no longer has the process.</summary>
    public static string? Read(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Field 22; the command name (field 2) may hold spaces and parentheses.</summary>
    public static ulong? StartTime(string stat) => Field(stat, 22);

    /// <summary>User + system CPU time in seconds (fields 14 and 15).</summary>
    public static double? CpuSeconds(string stat) =>
        Field(stat, 14) is { } user && Field(stat, 15) is { } system ? (double)(user + system) / ClockTicks : null;

    /// <summary>The CPU a live process has used so far, in seconds; null when it is gone.</summary>
    public static double? CpuSeconds(int pid) => Read(pid) is { } stat ? CpuSeconds(stat) : null;

    private static ulong? Field(string stat, int number)
    {
        var close = stat.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }
        // After ") ": field 3 (state) onwards.
        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var index = number - 3;
        return fields.Length > index && ulong.TryParse(fields[index], NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;
    }
}
