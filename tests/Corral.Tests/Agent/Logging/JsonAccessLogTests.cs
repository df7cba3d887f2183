using System.Text;
using System.Text.Json;
using Corral.Agent.Logging;

namespace Corral.Tests;

/// <summary>--access-log-json: each line is one JSON object whose values round-trip exactly, whatever a client sends.</summary>
public class JsonAccessLogTests
{
    private static readonly DateTimeOffset Start = new(2024, 2, 29, 23, 59, 58, 250, TimeSpan.FromMinutes(330));

    private static readonly string[] Hostile =
    [
        "plain",
        "say \"hi\"",
        "back\\slash \\\" \\\\",
        "\"}, \"x\":\"",
        "\", \"http.response.status_code\": 999, \"y\": \"",
        "tab\there\u0001bell\u0007esc\u001b del\u007f",
        "line\nbreak\r\nand\rreturn",
        "nel\u0085 ls\u2028 ps\u2029 c1\u009b",
        "jürgen 日本語 😀 ÿ",
        "</script><b>&amp;'+`",
        "",
        " ",
    ];

    public static TheoryData<string> HostileValues()
    {
        var data = new TheoryData<string>();
        foreach (var h in Hostile)
        {
            data.Add(h);
        }
        return data;
    }

    private static AccessLogEntry Entry(
        string? remote = "192.0.2.7",
        string method = "GET",
        string rawTarget = "/a%20b?b=1&c=%22",
        string path = "/a b",
        string query = "?b=1&c=%22",
        string protocol = "HTTP/1.1",
        string scheme = "http",
        Dictionary<string, string[]>? requestHeaders = null,
        TimeSpan? duration = null)
    {
        var headers = new Dictionary<string, string[]>(requestHeaders ?? new() { ["User-Agent"] = ["curl/8"] }, StringComparer.OrdinalIgnoreCase);
        return new AccessLogEntry
        {
            Start = Start,
            Duration = duration ?? TimeSpan.FromTicks(12_345_678),
            RemoteAddress = remote,
            Method = method,
            RawTarget = rawTarget,
            Path = path,
            QueryString = query,
            Protocol = protocol,
            Status = 201,
            BytesSent = 1234,
            RequestHeader = name => headers.TryGetValue(name, out var v) ? string.Join(",", v) : null,
            ResponseHeader = _ => null,
            RequestHeaderValues = name => headers.TryGetValue(name, out var v) ? v : null,
            Scheme = scheme,
            ProcessId = 4242,
        };
    }

    /// <summary>Formats, checks the line is one line of JSON with no duplicate keys, and returns its root.</summary>
    private static JsonElement Line(AccessLogEntry entry)
    {
        var line = JsonAccessLog.Format(entry);
        foreach (var c in line)
        {
            Assert.False(char.IsControl(c) || c is '\u2028' or '\u2029', $"raw U+{(int)c:X4} in {line}");
        }
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement.Clone();
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        var names = root.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        return root;
    }

    private static readonly string[] AllFields =
    [
        "timestamp", "http.request.method", "url.original", "url.path", "url.query", "url.scheme",
        "network.protocol.name", "network.protocol.version", "http.response.status_code", "http.response.body.size",
        "http.server.request.duration", "client.address", "user.name", "user_agent.original", "http.request.header.referer", "process.pid",
    ];

    [Fact]
    public void Every_field_has_its_value_and_type()
    {
        var root = Line(Entry(requestHeaders: new()
        {
            ["User-Agent"] = ["curl/8"],
            ["Referer"] = ["http://example.test/from"],
            ["Authorization"] = ["Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:secret"))],
        }));
        Assert.Equal(AllFields, root.EnumerateObject().Select(p => p.Name));
        // Gunicorn's t is when the response finished: 23:59:58.250 +05:30 + 1.2345678 s, in UTC.
        Assert.Equal("2024-02-29T18:29:59.484Z", root.GetProperty("timestamp").GetString());
        Assert.Equal("GET", root.GetProperty("http.request.method").GetString());
        Assert.Equal("/a%20b?b=1&c=%22", root.GetProperty("url.original").GetString());
        Assert.Equal("/a b", root.GetProperty("url.path").GetString());
        Assert.Equal("b=1&c=%22", root.GetProperty("url.query").GetString());
        Assert.Equal("http", root.GetProperty("url.scheme").GetString());
        Assert.Equal("http", root.GetProperty("network.protocol.name").GetString());
        Assert.Equal("1.1", root.GetProperty("network.protocol.version").GetString());
        Assert.Equal(JsonValueKind.Number, root.GetProperty("http.response.status_code").ValueKind);
        Assert.Equal(201, root.GetProperty("http.response.status_code").GetInt32());
        Assert.Equal(1234, root.GetProperty("http.response.body.size").GetInt64());
        Assert.Equal(1.2345678, root.GetProperty("http.server.request.duration").GetDouble());
        Assert.Equal("192.0.2.7", root.GetProperty("client.address").GetString());
        Assert.Equal("bob", root.GetProperty("user.name").GetString());
        Assert.Equal("curl/8", root.GetProperty("user_agent.original").GetString());
        Assert.Equal(["http://example.test/from"], root.GetProperty("http.request.header.referer").EnumerateArray().Select(v => v.GetString()));
        Assert.Equal(4242, root.GetProperty("process.pid").GetInt32());
    }

    [Fact]
    public void Absent_values_are_left_out_not_dashes()
    {
        var root = Line(Entry(remote: null, query: "", requestHeaders: []));
        var names = root.EnumerateObject().Select(p => p.Name).ToHashSet();
        Assert.Equal(AllFields.Except(["client.address", "url.query", "user.name", "user_agent.original", "http.request.header.referer"]).ToHashSet(), names);
        Assert.Equal("", Line(Entry(query: "?")).GetProperty("url.query").GetString());
    }

    [Theory]
    [InlineData("HTTP/1.0", "http", "1.0")]
    [InlineData("HTTP/2", "http", "2")]
    [InlineData("HTTP/3", "http", "3")]
    public void The_protocol_is_split_into_name_and_version(string protocol, string name, string version)
    {
        var root = Line(Entry(protocol: protocol, scheme: "https"));
        Assert.Equal(name, root.GetProperty("network.protocol.name").GetString());
        Assert.Equal(version, root.GetProperty("network.protocol.version").GetString());
        Assert.Equal("https", root.GetProperty("url.scheme").GetString());
    }

    [Theory]
    [MemberData(nameof(HostileValues))]
    public void A_hostile_value_round_trips_exactly_in_every_string_field(string v)
    {
        var root = Line(Entry(
            remote: v,
            method: v,
            rawTarget: v,
            path: v,
            query: "?" + v,
            protocol: "HTTP/" + v,
            scheme: v,
            requestHeaders: new()
            {
                ["User-Agent"] = [v],
                ["Referer"] = [v, "second " + v],
                ["Authorization"] = ["Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("u" + v + ":pw"))],
            }));
        // The same fields, and only them: nothing forged.
        Assert.Equal(AllFields, root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(v, root.GetProperty("client.address").GetString());
        Assert.Equal(v, root.GetProperty("http.request.method").GetString());
        Assert.Equal(v, root.GetProperty("url.original").GetString());
        Assert.Equal(v, root.GetProperty("url.path").GetString());
        Assert.Equal(v, root.GetProperty("url.query").GetString());
        Assert.Equal(v, root.GetProperty("url.scheme").GetString());
        Assert.Equal(v, root.GetProperty("network.protocol.version").GetString());
        Assert.Equal(v, root.GetProperty("user_agent.original").GetString());
        var userPass = "u" + v + ":pw";
        Assert.Equal(userPass[..userPass.IndexOf(':')], root.GetProperty("user.name").GetString()); // up to the first colon, as Gunicorn
        Assert.Equal([v, "second " + v], root.GetProperty("http.request.header.referer").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(201, root.GetProperty("http.response.status_code").GetInt32());
        Assert.Equal(4242, root.GetProperty("process.pid").GetInt32());
    }

    [Fact]
    public void Quotes_backslashes_and_controls_are_json_escapes_and_non_ascii_text_stays_utf8()
    {
        var line = JsonAccessLog.Format(Entry(requestHeaders: new() { ["User-Agent"] = ["a\"b\\c\td\u0001e\nf jürgen 😀"] }));
        // Outside the BMP the encoder writes a \u surrogate pair (still the same text once parsed).
        Assert.Contains("\"user_agent.original\":\"a\\\"b\\\\c\\td\\u0001e\\nf jürgen \\uD83D\\uDE00\"", line);
    }

    [Fact]
    public void An_unpaired_surrogate_becomes_the_replacement_character()
    {
        var root = Line(Entry(path: "/x\uD800y", requestHeaders: new() { ["User-Agent"] = ["a\uDC00b 😀"], ["Referer"] = ["\uD83D"] }));
        Assert.Equal("/x\uFFFDy", root.GetProperty("url.path").GetString());
        Assert.Equal("a\uFFFDb 😀", root.GetProperty("user_agent.original").GetString());
        Assert.Equal(["\uFFFD"], root.GetProperty("http.request.header.referer").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void Without_header_values_the_single_header_value_is_used()
    {
        var entry = Entry(requestHeaders: new() { ["Referer"] = ["http://r.test/"] }) with { RequestHeaderValues = null };
        Assert.Equal(["http://r.test/"], Line(entry).GetProperty("http.request.header.referer").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void The_per_thread_buffer_is_reused_safely_after_a_huge_line_and_across_threads()
    {
        var huge = new string('x', 100_000) + "\"\n";
        Assert.Equal(huge, Line(Entry(requestHeaders: new() { ["User-Agent"] = [huge] })).GetProperty("user_agent.original").GetString());
        Assert.Equal("small", Line(Entry(requestHeaders: new() { ["User-Agent"] = ["small"] })).GetProperty("user_agent.original").GetString());
        Parallel.For(0, 2000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var agent = $"agent {i} \"{new string('y', i % 50)}\"";
            var line = JsonAccessLog.Format(Entry(path: "/p" + i, requestHeaders: new() { ["User-Agent"] = [agent] }));
            using var doc = JsonDocument.Parse(line);
            Assert.Equal("/p" + i, doc.RootElement.GetProperty("url.path").GetString());
            Assert.Equal(agent, doc.RootElement.GetProperty("user_agent.original").GetString());
        });
    }
}
