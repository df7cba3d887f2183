namespace Corral.Os;

/// <summary>
/// A worker's memory as the kernel counts it: its PSS, from /proc/PID/smaps_rollup (resident pages,
/// each shared one divided among the processes that map it; summed RSS would count the shared runtime
/// once per worker). Reading walks the process's page tables: 1-3 ms for a typical worker.
/// </summary>
public static class ProcMemory
{
    /// <summary>PSS in bytes; null when the process is gone or its smaps_rollup cannot be read.</summary>
    public static long? Pss(int pid)
    {
        try
        {
            return Agent.Metrics.WorkerStats.ParsePss(File.ReadAllText($"/proc/{pid}/smaps_rollup")) is > 0 and var pss ? pss : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
