using System.Globalization;

namespace Corral.Supervision;

/// <summary>
/// --boot-nice: whether a new worker boots at a lower CPU priority than the master, and at which nice
/// value. Lowering a priority is always allowed; raising it back once the worker is ready is not: only
/// with CAP_SYS_NICE (root has it), or down to 20 - RLIMIT_NICE. A worker that could not be raised back
/// would serve at the low priority all its life, so then it is not lowered at all.
/// </summary>
public static class BootPriority
{
    /// <summary>RLIM_INFINITY.</summary>
    public const ulong Unlimited = ulong.MaxValue;

    /// <summary>The highest nice value (the lowest priority) Linux has.</summary>
    public const int Lowest = 19;

    /// <summary>True if a process with these rights may set a nice value of <paramref name="masterNice"/> again, from a higher one.</summary>
    public static bool MayRaiseBack(bool capSysNice, ulong niceLimit, int masterNice) =>
        capSysNice || niceLimit == Unlimited || 20 - (long)niceLimit <= masterNice;

    /// <summary>
    /// The nice value a new worker boots at, or null when it boots at the master's
    /// (<paramref name="why"/> then says why, unless --boot-nice is 0, or there is nothing lower).
    /// </summary>
    public static int? BootNice(int bootNice, int masterNice, bool mayRaiseBack, out string? why)
    {
        why = null;
        var nice = Math.Min(Lowest, masterNice + bootNice);
        if (bootNice <= 0 || nice <= masterNice)
        {
            return null;
        }
        if (!mayRaiseBack)
        {
            why = string.Create(CultureInfo.InvariantCulture,
                $"Workers boot at the master's priority (nice {masterNice}), not --boot-nice {bootNice}: corral could not raise a ready worker's priority back (it needs root, CAP_SYS_NICE or RLIMIT_NICE >= {20 - masterNice})");
            return null;
        }
        return nice;
    }
}
