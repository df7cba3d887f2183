namespace Corral.Supervision;

public enum WorkerState
{
    /// <summary>Started; has not said "ready" yet.</summary>
    Booting,
    /// <summary>Kestrel listens: takes requests.</summary>
    Ready,
    /// <summary>Sent TERM: drains its in-flight requests and exits.</summary>
    Stopping,
    /// <summary>Timed out: sent SIGABRT, then SIGKILL.</summary>
    Killing,
}
