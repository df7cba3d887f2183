using Corral.Agent.Contract;
using Corral.Lifecycle;

namespace Corral;

/// <summary>What reaches the master's loop.</summary>
public abstract record MasterEvent
{
    public sealed record Signal(int Number) : MasterEvent;
    public sealed record Exited(int Pid, int ExitCode) : MasterEvent;
    public sealed record Control(int Pid, Message Message) : MasterEvent;
    public sealed record Tick : MasterEvent;
    public sealed record SourceChanged(string Path) : MasterEvent;
    public sealed record UpgradeExited(int Pid, int ExitCode) : MasterEvent;
    public sealed record Rebuilt(AppTarget.BuildResult Result) : MasterEvent;

    /// <summary>A worker's control channel reached end-of-file: it will send nothing more.</summary>
    public sealed record ControlClosed(int Pid) : MasterEvent;

    /// <summary>A capture of a worker's stacks (IProcessHost.CaptureStacks) ended, written to the log or given up.</summary>
    public sealed record StacksCaptured(int Pid) : MasterEvent;

    /// <summary>A `corral ctl` command (one line), carried out on the loop; the reply is JSON.</summary>
    public sealed record Command(string Text, TaskCompletionSource<string> Reply) : MasterEvent;

    /// <summary>A snapshot of the master's state for the metrics server and the status page.</summary>
    public sealed record Observe(TaskCompletionSource<Metrics.MasterSnapshot> Reply) : MasterEvent;
}
