using System.Text.Json;
using System.Text.Json.Serialization;

namespace Corral.Agent.Contract;

/// <summary>
/// The body of a "stats" line (<see cref="Protocol.Stats"/>): a worker's cumulative counts since it
/// started, and its memory now. Written by the agent's <see cref="Metrics.WorkerStats"/> every
/// <see cref="Protocol.StatsInterval"/> and once more at exit; the master adds what grew since the
/// worker's previous report to its totals.
/// </summary>
public sealed record WorkerStatsReport
{
    /// <summary>Requests by "METHOD CLASS" (e.g. "GET 2xx"); only the non-zero ones.</summary>
    [JsonPropertyName("requests")] public Dictionary<string, long> Requests { get; init; } = [];

    /// <summary>Requests per duration bucket (<see cref="Metrics.WorkerStats.Buckets"/>, then +Inf).</summary>
    [JsonPropertyName("bucket_counts")] public long[] BucketCounts { get; init; } = [];

    /// <summary>The sum of the durations in each bucket, in seconds.</summary>
    [JsonPropertyName("bucket_sums")] public double[] BucketSums { get; init; } = [];

    [JsonPropertyName("inflight")] public int InFlight { get; init; }
    [JsonPropertyName("gc_heap")] public long GcHeap { get; init; }
    [JsonPropertyName("rss")] public long Rss { get; init; }

    /// <summary>Proportional set size (0 when it was not read: it is read every few reports).</summary>
    [JsonPropertyName("pss")] public long Pss { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, StatsJsonContext.Default.WorkerStatsReport);

    /// <summary>
    /// The report in <paramref name="json"/>, or null when it is not one (the master reads it on its
    /// loop: a worker's garbage is dropped, never thrown).
    /// </summary>
    public static WorkerStatsReport? TryParse(string json)
    {
        try
        {
            // A property left out, or written as null, reads as empty.
            return JsonSerializer.Deserialize(json, StatsJsonContext.Default.WorkerStatsReport) is { } r
                ? r with { Requests = r.Requests ?? [], BucketCounts = r.BucketCounts ?? [], BucketSums = r.BucketSums ?? [] }
                : null;
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException)
        {
            return null;
        }
    }
}

[JsonSerializable(typeof(WorkerStatsReport))]
internal sealed partial class StatsJsonContext : JsonSerializerContext;
