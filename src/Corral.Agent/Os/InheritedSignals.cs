using System.Runtime.InteropServices;

namespace Corral.Agent.Os;

/// <summary>Signal dispositions a process inherits: shared by the master (corral) and the agent.</summary>
public static partial class InheritedSignals
{
    /// <summary>
    /// Makes a signal that this process inherited ignored (SIG_IGN: `nohup`, or `&` in a non-interactive
    /// shell for INT and QUIT) take its default action again, so that a handler can be registered for it.
    /// .NET leaves an ignored signal ignored for good (PosixSignalRegistration then never fires): call
    /// this before anything starts .NET's signal handling (Console, Process, PosixSignalRegistration).
    /// A signal that is not ignored is left as it is.
    /// </summary>
    public static unsafe void Unignore(int signal)
    {
        // struct sigaction starts with sa_handler on Linux (glibc and musl); 256 bytes hold all of it.
        var old = stackalloc byte[256];
        if (SigAction(signal, null, old) == 0 && *(nint*)old == SigIgn)
        {
            SignalDisposition(signal, SigDfl);
        }
    }

    private const nint SigDfl = 0, SigIgn = 1;

    [LibraryImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static unsafe partial int SigAction(int signal, byte* action, byte* oldAction);

    [LibraryImport("libc", EntryPoint = "signal", SetLastError = true)]
    private static partial nint SignalDisposition(int signal, nint handler);
}
