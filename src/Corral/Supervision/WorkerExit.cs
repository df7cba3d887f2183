namespace Corral.Supervision;

/// <summary>
/// A worker that is gone, as the arbiter knew it last: for observers (the restart counts by reason).
/// </summary>
/// <param name="LastState">Its state when it exited: Booting or Ready if it exited unasked.</param>
/// <param name="Reason">Why the arbiter stopped it; null if it exited unasked (a crash, a failed boot).</param>
/// <param name="RetireReason">Why it had asked to be replaced (--max-requests, out of memory), if it had.</param>
public sealed record WorkerExit(int Pid, int Generation, WorkerState LastState, StopReason? Reason, StopReason? RetireReason, int ExitCode)
{
    /// <summary>Nobody asked it to go.</summary>
    public bool Unasked => Reason is null;
}
