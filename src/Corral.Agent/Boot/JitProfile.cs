using System.Globalization;
using System.Runtime;

namespace Corral.Agent.Boot;

/// <summary>
/// --jit-profile: the runtime's multicore JIT (System.Runtime.ProfileOptimization) replays the methods
/// that the app's previous workers compiled, on a background thread, while this one boots. Each worker
/// records into a file of its own (<c>PROFILE.PID</c>, a copy of the app's profile, which the runtime
/// replays and then rewrites), and at a graceful exit writes it out and renames it over the app's
/// profile: no two workers ever write one file, and a successor reads a whole profile or the one before.
/// On Unix the runtime writes a profile only when it is told to stop (dotnet/runtime#33252), so the
/// exit stops it explicitly. A worker that dies by a signal leaves its file; the master removes it.
/// </summary>
internal static class JitProfile
{
    private static string? s_own;
    private static string? s_shared;
    private static int s_saved;

    /// <summary>The worker's own file beside <paramref name="shared"/>.</summary>
    public static string OwnFile(string shared, int pid) => shared + "." + pid.ToString(CultureInfo.InvariantCulture);

    /// <summary>At the very start of the worker (as its user): replay the app's profile and record this worker's.</summary>
    public static void Start(string shared, Action<string> debug)
    {
        var own = OwnFile(shared, Environment.ProcessId);
        try
        {
            if (File.Exists(shared))
            {
                File.Copy(shared, own, overwrite: true);
            }
            ProfileOptimization.SetProfileRoot(Path.GetDirectoryName(own)!);
            ProfileOptimization.StartProfile(Path.GetFileName(own));
            s_own = own;
            s_shared = shared;
            debug(File.Exists(own)
                ? $"JIT profile {shared} replayed ({new FileInfo(own).Length} bytes)"
                : $"JIT profile {shared} recorded from scratch (none yet)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            debug($"JIT profile {shared} not used: {e.Message}");
        }
    }

    /// <summary>At a graceful exit: the runtime writes this worker's profile, which then replaces the app's.</summary>
    public static void Save(Action<string> debug)
    {
        if (s_own is not { } own || s_shared is not { } shared || Interlocked.Exchange(ref s_saved, 1) != 0)
        {
            return;
        }
        try
        {
            // A null profile stops recording and writes the current one out.
            ProfileOptimization.StartProfile(null);
            if (new FileInfo(own) is { Exists: true, Length: > 0 } written)
            {
                File.Move(own, shared, overwrite: true);
                debug($"JIT profile {shared} saved ({written.Length} bytes)");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            debug($"JIT profile {shared} not saved: {e.Message}");
        }
    }
}
