namespace Corral.Agent;

/// <summary>
/// Notes that the app threw OutOfMemoryException, wherever it was thrown and whoever caught it (the
/// app's own exception handler turns it into a 500, and a worker at its heap limit, e.g. in a memory
/// cgroup, would go on answering 500 while it looks ready). The middleware then asks the master for a
/// recycle, overlapped as at --max-requests. The first-chance handler only sets a flag: at the moment
/// it runs, an allocation may fail again.
/// </summary>
internal static class OutOfMemoryWatch
{
    private static int s_seen;

    public static bool Seen => Volatile.Read(ref s_seen) != 0;

    public static void Install() => AppDomain.CurrentDomain.FirstChanceException += (_, e) =>
    {
        if (e.Exception is OutOfMemoryException)
        {
            Volatile.Write(ref s_seen, 1);
        }
    };
}
