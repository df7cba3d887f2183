using System.Runtime.InteropServices;

namespace Corral.IntegrationTests.Infrastructure;

/// <summary>
/// A test that only root can run (switching users, dropping capabilities): skipped, with the reason,
/// anywhere else. CI runs the tests as root. xunit 2 has no Assert.Skip: the attribute decides.
/// </summary>
public sealed partial class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (geteuid() != 0)
        {
            Skip = "needs root: it starts corral with -u/-g, which only root may give (CI runs the tests as root)";
        }
    }

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
