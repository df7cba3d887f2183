using System.Runtime.InteropServices;

namespace Corral.Agent;

internal static partial class Native
{
    /// <summary>_exit(2): leave now, running no managed shutdown handlers.</summary>
    [LibraryImport("libc", EntryPoint = "_exit")]
    public static partial void Exit(int status);
}
