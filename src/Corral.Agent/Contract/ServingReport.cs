using System.Text.Json;
using System.Text.Json.Serialization;

namespace Corral.Agent.Contract;

/// <summary>
/// The body of a "serving" line (<see cref="Protocol.Serving"/>), sent once by each worker just before
/// "ready": what only the app knows, for the master to log once per listener rather than
/// once per worker. The protocols its listeners speak and who chose them, and the app's own URLs
/// and Kestrel endpoints that corral's listeners replaced.
/// </summary>
public sealed record ServingReport
{
    /// <summary>What every listener speaks, in --http-protocols' form: h1, h2 or h2,h1.</summary>
    [JsonPropertyName("protocols")] public string Protocols { get; init; } = "";

    /// <summary>What was asked for, in the same form (h2,h1 asked without TLS is spoken as h1).</summary>
    [JsonPropertyName("asked")] public string Asked { get; init; } = "";

    /// <summary>Who chose them: --http-protocols, the app's configuration or code, or Kestrel's default.</summary>
    [JsonPropertyName("source")] public string Source { get; init; } = "";

    /// <summary>Every listener serves TLS (--certfile): ALPN offers the protocols.</summary>
    [JsonPropertyName("tls")] public bool Tls { get; init; }

    /// <summary>Something the operator should act on (the app's endpoints disagree), or null.</summary>
    [JsonPropertyName("warning")] public string? Warning { get; init; }

    /// <summary>The app's own URLs and endpoints that corral's listeners replaced (none: empty).</summary>
    [JsonPropertyName("replaced")] public string[] Replaced { get; init; } = [];

    public string ToJson() => JsonSerializer.Serialize(this, ServingJsonContext.Default.ServingReport);

    /// <summary>The report in <paramref name="json"/>, or null when it is not one (dropped, never thrown, as the stats).</summary>
    public static ServingReport? TryParse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, ServingJsonContext.Default.ServingReport) is { } r
                ? r with { Protocols = r.Protocols ?? "", Asked = r.Asked ?? "", Source = r.Source ?? "", Replaced = r.Replaced ?? [] }
                : null;
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException)
        {
            return null;
        }
    }
}

[JsonSerializable(typeof(ServingReport))]
internal sealed partial class ServingJsonContext : JsonSerializerContext;
