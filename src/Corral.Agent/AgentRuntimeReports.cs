using Corral.Agent.Contract;
using Corral.Agent.Http;
using Corral.Agent.Logging;
using Corral.Agent.Metrics;

namespace Corral.Agent;

/// <summary>A worker's <see cref="IWorkerReports"/>: <see cref="AgentRuntime"/>'s log, metrics, statsd client and control channel.</summary>
internal sealed class AgentRuntimeReports : IWorkerReports
{
    public static readonly AgentRuntimeReports Instance = new();

    private AgentRuntimeReports()
    {
    }

    public AgentLog Log => AgentRuntime.Log;
    public WorkerStats Metrics => AgentRuntime.Metrics;
    public StatsdClient? Statsd => AgentRuntime.Statsd;
    public bool OutOfMemorySeen => OutOfMemoryWatch.Seen;
    public void AskRecycle(string? reason) => AgentRuntime.ReportRecycle(reason);
    public void ReportHung(HungRequest request) => AgentRuntime.ReportHung(request);
}
