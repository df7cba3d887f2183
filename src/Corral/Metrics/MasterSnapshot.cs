using System.Text.Json;
using System.Text.Json.Serialization;

namespace Corral.Metrics;

/// <summary>What the master knows at one moment, made on its loop: the answer to `corral ctl status`, the status page's data, the gauges' values.</summary>
public sealed record MasterSnapshot
{
    [JsonPropertyName("pid")] public required int Pid { get; init; }
    [JsonPropertyName("version")] public required string Version { get; init; }
    [JsonPropertyName("uptime_seconds")] public required double UptimeSeconds { get; init; }
    [JsonPropertyName("desired_workers")] public required int DesiredWorkers { get; init; }
    /// <summary>-w MIN:MAX's bounds as they are now (TTIN/TTOU move them); both the wanted count for a fixed -w.</summary>
    [JsonPropertyName("workers_min")] public int WorkersMin { get; init; }
    [JsonPropertyName("workers_max")] public int WorkersMax { get; init; }

    /// <summary>Changes of the worker count made by the load (-w MIN:MAX), by direction, since the master started.</summary>
    [JsonPropertyName("scale_ups")] public long ScaleUps { get; init; }
    [JsonPropertyName("scale_downs")] public long ScaleDowns { get; init; }

    /// <summary>The latest such change, as logged ("Scaling up to 3 workers: ..."); null before any.</summary>
    [JsonPropertyName("last_scale_event")] public string? LastScaleEvent { get; init; }
    [JsonPropertyName("stopping")] public required bool Stopping { get; init; }
    [JsonPropertyName("listeners")] public required IReadOnlyList<ListenerView> Listeners { get; init; }
    [JsonPropertyName("workers")] public required IReadOnlyList<WorkerView> Workers { get; init; }

    /// <summary>Requests served since the master started, every worker that ever ran included.</summary>
    [JsonPropertyName("requests_total")] public required long RequestsTotal { get; init; }
    [JsonPropertyName("requests_by_class")] public required IReadOnlyDictionary<string, long> RequestsByClass { get; init; }
    [JsonPropertyName("restarts")] public required IReadOnlyDictionary<string, long> Restarts { get; init; }

    /// <summary>The latest workers that are gone, newest first: why each went.</summary>
    [JsonPropertyName("recent_exits")] public IReadOnlyList<ExitView> RecentExits { get; init; } = [];

    /// <summary>--max-worker-memory in bytes (each worker's PSS is judged against it); 0: none.</summary>
    [JsonPropertyName("worker_memory_limit_bytes")] public long WorkerMemoryLimit { get; init; }

    /// <summary>The hard ceiling above which the master kills a worker; 0: none.</summary>
    [JsonPropertyName("worker_memory_ceiling_bytes")] public long WorkerMemoryCeiling { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, SnapshotJson.Default.MasterSnapshot);

    public static MasterSnapshot? FromJson(string json) => JsonSerializer.Deserialize(json, SnapshotJson.Default.MasterSnapshot);
}

public sealed record ListenerView(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("queued")] long Queued);

public sealed record WorkerView(
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("retiring")] bool Retiring,
    [property: JsonPropertyName("generation")] int Generation,
    [property: JsonPropertyName("age_seconds")] double AgeSeconds,
    [property: JsonPropertyName("boot_seconds")] double? BootSeconds,
    [property: JsonPropertyName("boot_cpu_seconds")] double? BootCpuSeconds,
    [property: JsonPropertyName("served")] long Served,
    [property: JsonPropertyName("in_flight")] int InFlight,
    [property: JsonPropertyName("rss_bytes")] long Rss,
    [property: JsonPropertyName("pss_bytes")] long Pss,
    [property: JsonPropertyName("gc_heap_bytes")] long GcHeap,
    [property: JsonPropertyName("retire_reason")] string? RetireReason = null,
    [property: JsonPropertyName("lifetime_seconds")] double? LifetimeSeconds = null,
    [property: JsonPropertyName("lifetime_due_in_seconds")] double? LifetimeDueInSeconds = null,
    [property: JsonPropertyName("spare")] bool Spare = false);

/// <summary>A worker that is gone: why (<see cref="Observatory.WhyGone"/>), how long it ran, how it exited.</summary>
public sealed record ExitView(
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("generation")] int Generation,
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("exit_code")] int ExitCode,
    [property: JsonPropertyName("lived_seconds")] double? LivedSeconds,
    [property: JsonPropertyName("ago_seconds")] double? AgoSeconds);

[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(MasterSnapshot))]
internal sealed partial class SnapshotJson : JsonSerializerContext;
