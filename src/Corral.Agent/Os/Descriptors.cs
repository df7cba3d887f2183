using System.Runtime.InteropServices;

namespace Corral.Agent.Os;

/// <summary>
/// The process's file descriptors: how many it may have open (RLIMIT_NOFILE; the runtime raises the
/// soft limit to the hard one at start) and how many it has. A .NET worker holds two for each
/// assembly it has loaded (about 190 for a small web app), and the runtime needs two more for each
/// thread it starts: out of descriptors, it cannot start one, and its thread pool ends the process.
/// </summary>
internal static partial class Descriptors
{
    private const int RLIMIT_NOFILE = 7;

    /// <summary>
    /// Kept free when the connection cap is worked out: assemblies the app loads later (two
    /// descriptors each), the threads the runtime starts, the files and sockets the app opens.
    /// </summary>
    public const int Reserve = 64;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    /// <summary>The soft limit on open descriptors; null if unknown or unlimited.</summary>
    public static int? Limit() =>
        GetRLimit(RLIMIT_NOFILE, out var limit) == 0 && limit.Current < int.MaxValue ? (int)limit.Current : null;

    /// <summary>Descriptors open now (/proc/self/fd); null if it cannot be read.</summary>
    public static int? InUse()
    {
        try
        {
            // Less the one that reading the directory holds.
            return Directory.EnumerateFileSystemEntries("/proc/self/fd").Count() - 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// How many connections the process can hold with <paramref name="limit"/> descriptors when
    /// <paramref name="inUse"/> are open before it takes any: what is left, less <see cref="Reserve"/>
    /// (at least 1).
    /// </summary>
    public static int ConnectionCap(int limit, int inUse) => Math.Max(1, limit - inUse - Reserve);
}
