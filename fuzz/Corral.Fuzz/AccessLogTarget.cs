using System.Text.Json;
using Corral.Agent.Contract;
using Corral.Agent.Logging;

namespace Corral.Fuzz;

/// <summary>
/// accesslog: an --access-logformat (the operator's) and a request's values (the client's: method,
/// target, headers) through <see cref="AccessLogFormat.TryParse"/> and <see cref="AccessLogFormat.Format"/>,
/// and the same request through <see cref="JsonAccessLog.Format"/>. The input's parts, between NUL
/// bytes: the format, then the values. Promises: no exception; a format that does not parse says why;
/// a format without control characters gives a line without any, whatever the request held (a header
/// cannot forge a line); the JSON line is one valid JSON object.
/// </summary>
internal static class AccessLogTarget
{
    public static readonly Target Target = new("accesslog", "access-log format parser and renderer (AccessLogFormat, JsonAccessLog)", Run, Targets.Tokens(
        "%(", ")s", "%%", "%", "{", "}i", "}o", "}e", "%(h)s", "%(l)s", "%(u)s", "%(t)s", "%(r)s", "%(m)s", "%(U)s", "%(q)s", "%(H)s", "%(s)s",
        "%(B)s", "%(b)s", "%(f)s", "%(a)s", "%(T)s", "%(M)s", "%(D)s", "%(L)s", "%(p)s", "%({x-id}i)s", "%({content-type}o)s", "%({HOME}e)s",
        "\0", "\"", "\\", "\n", "\u2028", "\u0085", "Basic ", "dXNlcjpwYXNz", "?", "HTTP/1.1"));

    private static void Run(byte[] input)
    {
        var parts = Targets.Parts(input);
        var format = parts[0];
        string Value(int i) => parts.Length > 1 ? parts[1 + i % (parts.Length - 1)] : "";
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["Authorization"] = Value(6),
            ["Referer"] = Value(7),
            ["User-Agent"] = Value(8),
            ["X-Id"] = Value(9),
        };
        var entry = new AccessLogEntry
        {
            Start = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.FromHours(-7)),
            Duration = TimeSpan.FromTicks(1_234_567),
            RemoteAddress = Value(0),
            Method = Value(1),
            RawTarget = Value(2),
            Path = Value(3),
            QueryString = Value(4),
            Protocol = Value(5),
            Status = 200,
            BytesSent = 42,
            RequestHeader = name => headers.GetValueOrDefault(name),
            ResponseHeader = name => name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase) ? Value(10) : null,
            RequestHeaderValues = name => headers.TryGetValue(name, out var v) ? [v, Value(11)] : null,
        };

        if (!AccessLogFormat.TryParse(format, out var parsed, out var error))
        {
            Targets.Promise(parsed is null && !string.IsNullOrEmpty(error), $"a format that does not parse, and the reason is '{error}'");
        }
        else
        {
            Targets.Promise(parsed is not null && error is null, "parsed, with an error or without a format");
            var line = parsed!.Format(entry);
            Targets.Promise(Targets.HasControl(format) || !Targets.HasControl(line), $"a control character in the line: '{line}'");
        }

        var json = JsonAccessLog.Format(entry);
        Targets.Promise(!Targets.HasControl(json), $"a control character in the JSON line: '{json}'");
        using var doc = JsonDocument.Parse(json);
        Targets.Promise(doc.RootElement.ValueKind == JsonValueKind.Object, "the JSON line is not an object");
    }
}
