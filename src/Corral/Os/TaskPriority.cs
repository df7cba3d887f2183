using System.Globalization;

namespace Corral.Os;

/// <summary>
/// Nice values of whole processes. On Linux a nice value belongs to each task (thread), not to the
/// process: setpriority(PRIO_PROCESS, pid) changes one thread of a .NET worker. A thread inherits the
/// nice value of the thread that creates it, and a child process that of the thread that forks it;
/// so a worker started from a thread running at a nice value runs all its threads at it, and raising it
/// back means setting every task in /proc/PID/task.
/// </summary>
public static class TaskPriority
{
    /// <summary>True when this process has CAP_SYS_NICE in its effective set (root has it).</summary>
    public static bool HasCapSysNice()
    {
        const int CAP_SYS_NICE = 23;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("CapEff:", StringComparison.Ordinal)
                    && ulong.TryParse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var caps))
                {
                    return (caps & (1UL << CAP_SYS_NICE)) != 0;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return false;
    }

    /// <summary>The calling thread's nice value.</summary>
    public static int Current() => Native.GetNice(Native.ThreadId()) ?? 0;

    /// <summary>
    /// Runs <paramref name="spawn"/> on this thread at nice <paramref name="nice"/> (what a process it forks
    /// inherits), then sets this thread back to <paramref name="restore"/>.
    /// </summary>
    public static T ForkAt<T>(int nice, int restore, Func<T> spawn)
    {
        var tid = Native.ThreadId();
        Native.SetNice(tid, nice, out _);
        try
        {
            return spawn();
        }
        finally
        {
            Native.SetNice(tid, restore, out _);
            // Threads the spawn itself started meanwhile (the thread pool's wait thread, which watches for the exit) inherited the nice value too.
            SetAll(Environment.ProcessId, restore, out _);
        }
    }

    /// <summary>
    /// Sets every thread of <paramref name="pid"/> to <paramref name="nice"/>, again while a pass finds one
    /// that is not (a thread created meanwhile by one not yet set). The number of threads set, or the
    /// error (errno text) of the first refusal; 0 and no error if the process is gone.
    /// </summary>
    public static int SetAll(int pid, int nice, out string? error)
    {
        error = null;
        var set = 0;
        for (var pass = 0; pass < 3; pass++)
        {
            string[] tasks;
            try
            {
                tasks = Directory.GetDirectories(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}/task"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return set;
            }
            var changed = 0;
            foreach (var task in tasks)
            {
                if (!int.TryParse(Path.GetFileName(task), NumberStyles.None, CultureInfo.InvariantCulture, out var tid)
                    || Native.GetNice(tid) is not { } current || current == nice)
                {
                    continue;
                }
                if (!Native.SetNice(tid, nice, out var errno))
                {
                    if (errno == 3)
                    {
                        continue; // ESRCH: the thread ended meanwhile
                    }
                    error = System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno);
                    return set;
                }
                changed++;
            }
            set += changed;
            if (changed == 0)
            {
                break;
            }
        }
        return set;
    }
}
