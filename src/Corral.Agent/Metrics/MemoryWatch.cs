using System.Diagnostics;
using Corral.Agent.Admission;
using Corral.Agent.Contract;

namespace Corral.Agent.Metrics;

/// <summary>
/// --max-worker-memory in a worker: about once a second it reads its PSS (/proc/self/smaps_rollup) and
/// follows <see cref="MemoryLimitPolicy"/>. Over the limit after a full collection, the worker stops
/// taking new connections at once (<see cref="AdmissionGate.StopAccepting"/>: its memory stops growing
/// with new clients), logs one warning and asks the master for a recycle ("recycle memory"); the
/// master starts its successor, then drains it.
/// </summary>
internal static class MemoryWatch
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private const string SmapsRollup = "/proc/self/smaps_rollup";
    private static Timer? s_timer;

    public static void Start(AgentOptions options, AdmissionGate gate)
    {
        if (options.MaxWorkerMemory <= 0 || s_timer is not null)
        {
            return;
        }
        var policy = new MemoryLimitPolicy(options.MaxWorkerMemory);
        s_timer = new Timer(Background.Timer("Memory limit", () => Look(policy, gate)), null, Interval, Interval);
    }

    private static void Look(MemoryLimitPolicy policy, AdmissionGate gate)
    {
        var now = Stopwatch.GetElapsedTime(0);
        var pss = WorkerStats.ReadPss(SmapsRollup);
        var verdict = policy.Judge(pss, now);
        if (verdict == MemoryVerdict.Nothing)
        {
            return;
        }
        if (verdict == MemoryVerdict.Collect)
        {
            var before = pss;
            // Aggressive: also gives back to the OS what the collection freed, so the PSS read next shows it.
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            pss = WorkerStats.ReadPss(SmapsRollup);
            if (policy.AfterCollection(pss) != MemoryVerdict.Recycle)
            {
                AgentRuntime.Log.Debug($"Worker was above --max-worker-memory ({Mib(before)} > {Mib(policy.Limit)}) until a full garbage collection: {Mib(pss)} now, GC heap {Mib(GC.GetTotalMemory(false))} (pid: {Environment.ProcessId})");
                return;
            }
        }
        var heap = GC.GetTotalMemory(false);
        s_timer?.Dispose();
        if (AgentRuntime.Stats.Snapshot().Served == 0 && AgentRuntime.Stats.InFlight == 0)
        {
            // Over before serving anything: its successor would be too, and recycling would never end.
            AgentRuntime.Log.Error($"Worker is above --max-worker-memory before serving a request: PSS {Mib(pss)} > limit {Mib(policy.Limit)} (GC heap {Mib(heap)}): the limit is too low for this app, so it is not recycled for it; raise --max-worker-memory (pid: {Environment.ProcessId})");
            return;
        }
        gate.StopAccepting();
        AgentRuntime.Log.Warning($"Worker is above --max-worker-memory after a full garbage collection: PSS {Mib(pss)} > limit {Mib(policy.Limit)} (GC heap {Mib(heap)}): it takes no new connections, and is recycled (pid: {Environment.ProcessId})");
        AgentRuntime.ReportRecycle(Protocol.Memory);
    }

    private static string Mib(long bytes) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / 1048576.0:0.#} MiB");
}
