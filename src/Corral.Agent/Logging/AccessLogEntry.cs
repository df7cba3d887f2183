
namespace Corral.Agent.Logging;

/// <summary>What one access-log line is made of, captured when the response is done.</summary>
public sealed record AccessLogEntry
{
    public required DateTimeOffset Start { get; init; }
    public required TimeSpan Duration { get; init; }
    public string? RemoteAddress { get; init; }
    public required string Method { get; init; }
    public required string RawTarget { get; init; }
    public required string Path { get; init; }
    public required string QueryString { get; init; }
    public required string Protocol { get; init; }
    public required int Status { get; init; }
    public required long BytesSent { get; init; }
    public required Func<string, string?> RequestHeader { get; init; }
    public required Func<string, string?> ResponseHeader { get; init; }

    /// <summary>Every value of a request header, in order (null when absent); without it, <see cref="RequestHeader"/>'s one value.</summary>
    public Func<string, string?[]?>? RequestHeaderValues { get; init; }

    /// <summary>"http" or "https", as the app sees it (after --forwarded-allow-ips and --secure-scheme-headers).</summary>
    public string Scheme { get; init; } = "http";

    public int ProcessId { get; init; } = Environment.ProcessId;
}
