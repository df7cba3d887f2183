namespace Corral.Agent.Os;

/// <summary>
/// The process name that ps -e, top and pgrep show (/proc/PID/comm): "corral: master", "corral: worker",
/// or with -n/--name "NAME: master", as Gunicorn's setproctitle shows "gunicorn: master [NAME]". The kernel
/// keeps 15 bytes, so the name is cut to fit before the role. The command line (ps -f) is not
/// rewritten: that needs CAP_SYS_RESOURCE (prctl PR_SET_MM), and the pid file's check reads it.
/// </summary>
public static class ProcessTitle
{
    /// <summary>The kernel's limit: TASK_COMM_LEN is 16 bytes with the NUL.</summary>
    public const int MaxBytes = 15;

    /// <summary>The title for <paramref name="role"/> ("master", "worker") under an optional --name.</summary>
    public static string For(string? name, string role)
    {
        var suffix = ": " + role;
        if (string.IsNullOrWhiteSpace(name))
        {
            return "corral" + suffix;
        }
        name = name.Trim();
        var room = MaxBytes - System.Text.Encoding.UTF8.GetByteCount(suffix);
        // Cut by bytes (the kernel's unit) without splitting a character.
        var cut = 0;
        var bytes = 0;
        foreach (var rune in name.EnumerateRunes())
        {
            if (bytes + rune.Utf8SequenceLength > room)
            {
                break;
            }
            bytes += rune.Utf8SequenceLength;
            cut += rune.Utf16SequenceLength;
        }
        return name[..cut] + suffix;
    }

    /// <summary>
    /// Names the process (its main thread, which is what ps shows for it); from any thread. A failure
    /// (no /proc) changes nothing else: the name is a convenience.
    /// </summary>
    public static bool Set(string title)
    {
        try
        {
            File.WriteAllText("/proc/self/comm", title);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
