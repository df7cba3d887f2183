using Corral.Agent.Contract;
using Corral.Agent.Logging;
using Corral.Agent.Metrics;

namespace Corral.Agent.Http;

/// <summary>
/// Where <see cref="CorralMiddleware"/> reports, beyond the gate and the request counts it is given:
/// the error log, the worker's metrics and statsd, the out-of-memory flag, and the master (a
/// recycle). In a worker, <see cref="AgentRuntimeReports"/>; in tests, a double.
/// </summary>
internal interface IWorkerReports
{
    AgentLog Log { get; }

    /// <summary>The requests by method and status, and their durations, for the master's metrics.</summary>
    WorkerStats Metrics { get; }

    /// <summary>--statsd-host's client; null (the default) leaves the request path untouched.</summary>
    StatsdClient? Statsd { get; }

    /// <summary>True once the app has thrown OutOfMemoryException, wherever it was caught (<see cref="OutOfMemoryWatch"/>).</summary>
    bool OutOfMemorySeen { get; }

    /// <summary>Asks the master to replace this worker, overlapped; <paramref name="reason"/> null: --max-requests.</summary>
    void AskRecycle(string? reason);

    /// <summary>Tells the master a request still runs past --request-timeout and its grace (the worker is hung for it). Must not block.</summary>
    void ReportHung(HungRequest request);
}
