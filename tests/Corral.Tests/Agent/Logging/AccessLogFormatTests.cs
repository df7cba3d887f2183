using System.Text;
using Corral.Agent.Logging;

namespace Corral.Tests;

/// <summary>
/// Gunicorn's access-log atoms. Expected values were checked against Gunicorn 20.1 (glogging.py)
/// serving a WSGI app; where Corral differs on purpose (escaping, unknown atoms are errors, e reads
/// the process environment), the test says so.
/// </summary>
public class AccessLogFormatTests
{
    private static readonly DateTimeOffset LoggedAt = new(2000, 10, 10, 13, 55, 36, TimeSpan.FromHours(-7));

    private static AccessLogEntry Entry(
        TimeSpan? duration = null,
        string? remote = "127.0.0.1",
        string method = "GET",
        string rawTarget = "/a?b=1",
        string path = "/a",
        string query = "?b=1",
        string protocol = "HTTP/1.1",
        int status = 200,
        long bytes = 12,
        Dictionary<string, string>? requestHeaders = null,
        Dictionary<string, string>? responseHeaders = null)
    {
        var d = duration ?? TimeSpan.Zero;
        var request = new Dictionary<string, string>(requestHeaders ?? new() { ["User-Agent"] = "curl/8" }, StringComparer.OrdinalIgnoreCase);
        var response = new Dictionary<string, string>(responseHeaders ?? [], StringComparer.OrdinalIgnoreCase);
        return new AccessLogEntry
        {
            Start = LoggedAt - d,
            Duration = d,
            RemoteAddress = remote,
            Method = method,
            RawTarget = rawTarget,
            Path = path,
            QueryString = query,
            Protocol = protocol,
            Status = status,
            BytesSent = bytes,
            RequestHeader = name => request.GetValueOrDefault(name),
            ResponseHeader = name => response.GetValueOrDefault(name),
            ProcessId = 4242,
        };
    }

    private static string Render(string format, AccessLogEntry entry) => AccessLogFormat.Parse(format).Format(entry);

    private static string Basic(string userPass) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(userPass));

    [Fact]
    public void The_default_format_renders_as_gunicorns()
    {
        Assert.Equal("127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /a?b=1 HTTP/1.1\" 200 12 \"-\" \"curl/8\"",
            Render(AccessLogFormat.GunicornDefault, Entry()));
    }

    [Fact]
    public void The_default_format_is_gunicorns()
    {
        Assert.Equal("%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"", AccessLogFormat.GunicornDefault);
    }

    [Theory]
    [InlineData("h", "127.0.0.1")]
    [InlineData("l", "-")]
    [InlineData("u", "bob")]
    [InlineData("t", "[10/Oct/2000:13:55:36 -0700]")]
    [InlineData("r", "GET /a%20b?b=1&c=%22 HTTP/1.1")]
    [InlineData("m", "GET")]
    [InlineData("U", "/a b")]
    [InlineData("q", "b=1&c=%22")]
    [InlineData("H", "HTTP/1.1")]
    [InlineData("s", "201")]
    [InlineData("B", "1234")]
    [InlineData("b", "1234")]
    [InlineData("f", "http://example.test/from")]
    [InlineData("a", "curl/8")]
    [InlineData("T", "1")]
    [InlineData("M", "1234")]
    [InlineData("D", "1234567")]
    [InlineData("L", "1.234567")]
    [InlineData("p", "<4242>")]
    [InlineData("{X-Request-Id}i", "abc-1")]
    [InlineData("{x-request-id}i", "abc-1")]
    [InlineData("{Content-Type}o", "text/plain")]
    [InlineData("{content-type}o", "text/plain")]
    public void Every_atom_renders_its_value(string atom, string expected)
    {
        var entry = Entry(
            duration: TimeSpan.FromTicks(12_345_678), // 1.2345678 s
            rawTarget: "/a%20b?b=1&c=%22",
            path: "/a b",
            query: "?b=1&c=%22",
            status: 201,
            bytes: 1234,
            requestHeaders: new()
            {
                ["User-Agent"] = "curl/8",
                ["Referer"] = "http://example.test/from",
                ["Authorization"] = Basic("bob:secret"),
                ["X-Request-Id"] = "abc-1",
            },
            responseHeaders: new() { ["Content-Type"] = "text/plain" });
        Assert.Equal(expected, Render($"%({atom})s", entry));
    }

    [Fact]
    public void An_environment_variable_atom_reads_the_workers_environment()
    {
        // Gunicorn's {name}e reads the WSGI environ; a worker has no such thing: Corral reads the process environment.
        var name = "CORRAL_TEST_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(name, "blue");
        try
        {
            Assert.Equal("blue", Render($"%({{{name}}}e)s", Entry()));
        }
        finally
        {
            Environment.SetEnvironmentVariable(name, null);
        }
        Assert.Equal("-", Render($"%({{{name}}}e)s", Entry()));
    }

    [Theory]
    [InlineData("h")]
    [InlineData("u")]
    [InlineData("f")]
    [InlineData("a")]
    [InlineData("{X-Missing}i")]
    [InlineData("{X-Missing}o")]
    [InlineData("{CORRAL_TEST_SURELY_UNSET_VARIABLE}e")]
    public void A_missing_value_is_a_dash(string atom)
    {
        Assert.Equal("-", Render($"%({atom})s", Entry(remote: null, requestHeaders: [])));
    }

    [Fact]
    public void An_empty_query_is_empty_as_in_gunicorn()
    {
        // Gunicorn's q is QUERY_STRING, "" when there is none (not "-").
        Assert.Equal("[]", Render("[%(q)s]", Entry(query: "")));
        Assert.Equal("[]", Render("[%(q)s]", Entry(query: "?")));
    }

    [Fact]
    public void An_empty_body_is_zero_bytes_for_b_and_B_as_gunicorn_prints_it()
    {
        Assert.Equal("0 0", Render("%(b)s %(B)s", Entry(bytes: 0)));
    }

    [Theory]
    [InlineData(0, "0 0 0 0.000000")]
    [InlineData(9, "0 0 0 0.000000")]                       // 0.9 microseconds: truncated
    [InlineData(9_999_999, "0 999 999999 0.999999")]         // 0.9999999 s: truncated, not rounded up
    [InlineData(10_000_000, "1 1000 1000000 1.000000")]
    [InlineData(655_432_1000, "655 655432 655432100 655.432100")]
    public void Durations_are_truncated_as_gunicorn_does(long ticks, string expected)
    {
        Assert.Equal(expected, Render("%(T)s %(M)s %(D)s %(L)s", Entry(duration: TimeSpan.FromTicks(ticks))));
    }

    [Fact]
    public void Time_is_when_the_response_finished_in_its_own_offset()
    {
        var entry = Entry(duration: TimeSpan.FromSeconds(2)) with { Start = new DateTimeOffset(2024, 2, 29, 23, 59, 59, TimeSpan.FromMinutes(330)) };
        Assert.Equal("[01/Mar/2024:00:00:01 +0530]", Render("%(t)s", entry));
        Assert.Equal("[05/Jan/2025:07:08:09 +0000]", AccessLogFormat.FormatTime(new DateTimeOffset(2025, 1, 5, 7, 8, 9, TimeSpan.Zero)));
        Assert.Equal("[31/Dec/1999:23:00:00 -0930]", AccessLogFormat.FormatTime(new DateTimeOffset(1999, 12, 31, 23, 0, 0, TimeSpan.FromMinutes(-570))));
    }

    [Fact]
    public void Percent_percent_is_a_literal_percent_and_literals_are_kept()
    {
        Assert.Equal("100% [GET] (ok)", Render("100%% [%(m)s] (ok)", Entry()));
        Assert.Equal("%(h)s", Render("%%(h)s", Entry()));
        Assert.Equal("", Render("", Entry()));
        Assert.Equal("no atoms at all", Render("no atoms at all", Entry()));
    }

    [Fact]
    public void Atoms_are_case_sensitive_except_header_names()
    {
        Assert.Equal("127.0.0.1 HTTP/1.1 12 12", Render("%(h)s %(H)s %(b)s %(B)s", Entry()));
    }

    [Theory]
    [InlineData("bob:secret", "bob")]
    [InlineData("bob:se:cr:et", "bob")]
    [InlineData("bob:", "bob")]
    [InlineData("jürgen:x", "jürgen")]
    [InlineData(":secret", "-")]   // Gunicorn: an empty user is falsy, so '-'
    [InlineData("nocolon", "-")]
    public void U_is_the_basic_auth_user(string userPass, string expected)
    {
        var entry = Entry(requestHeaders: new() { ["Authorization"] = Basic(userPass) });
        Assert.Equal(expected, Render("%(u)s", entry));
    }

    [Theory]
    [InlineData("Bearer abc.def")]
    [InlineData("Basic !!!not-base64!!!")]
    [InlineData("Basic")]
    [InlineData("")]
    public void U_is_a_dash_without_a_readable_basic_auth_header(string authorization)
    {
        var entry = Entry(requestHeaders: new() { ["Authorization"] = authorization });
        Assert.Equal("-", Render("%(u)s", entry));
    }

    [Fact]
    public void U_accepts_any_case_of_basic()
    {
        var entry = Entry(requestHeaders: new() { ["Authorization"] = "basic " + Convert.ToBase64String("amy:pw"u8.ToArray()) });
        Assert.Equal("amy", Render("%(u)s", entry));
    }

    // ---- escaping (deliberately stricter than Gunicorn, which escapes only '"') ---------------

    [Theory]
    [InlineData("say \"hi\"", "say \\\"hi\\\"")]
    [InlineData("back\\slash", "back\\\\slash")]
    [InlineData("a\nb", "a\\x0ab")]
    [InlineData("a\r\nb", "a\\x0d\\x0ab")]
    [InlineData("tab\there", "tab\\x09here")]
    [InlineData("\u001b[31mred", "\\x1b[31mred")]
    [InlineData("nul\0", "nul\\x00")]
    [InlineData("del\u007f", "del\\x7f")]
    [InlineData("nel\u0085", "nel\\x85")]
    [InlineData("ls\u2028ps\u2029", "ls\\u2028ps\\u2029")]
    [InlineData("héllo wörld ☃", "héllo wörld ☃")]
    public void Values_are_escaped(string value, string expected)
    {
        var entry = Entry(requestHeaders: new() { ["User-Agent"] = value });
        Assert.Equal(expected, Render("%(a)s", entry));
    }

    [Fact]
    public void A_header_cannot_forge_a_field_or_a_line()
    {
        var forged = "x\" 500 0 \"-\" \"evil\n127.0.0.1 - admin [10/Oct/2000:13:55:36 -0700] \"GET /admin HTTP/1.1\" 200 1 \"-\" \"y";
        var entry = Entry(requestHeaders: new() { ["User-Agent"] = forged, ["Referer"] = "\"\r\n" });

        var line = Render(AccessLogFormat.GunicornDefault, entry);

        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain('\r', line);
        // Exactly the format's 6 quotes stay unescaped: the fields are the format's.
        var unescapedQuotes = 0;
        for (var i = 0; i < line.Length; i++)
        {
            if (line[i] == '\\')
            {
                i++;
            }
            else if (line[i] == '"')
            {
                unescapedQuotes++;
            }
        }
        Assert.Equal(6, unescapedQuotes);
        Assert.StartsWith("127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /a?b=1 HTTP/1.1\" 200 12 \"\\\"\\x0d\\x0a\" \"x\\\" 500", line);
    }

    [Fact]
    public void The_request_line_and_path_are_escaped_too()
    {
        var entry = Entry(method: "GE\"T", rawTarget: "/a\"b", path: "/a\nb", query: "?q=\"");
        Assert.Equal("GE\\\"T /a\\\"b HTTP/1.1|/a\\x0ab|q=\\\"", Render("%(r)s|%(U)s|%(q)s", entry));
    }

    [Fact]
    public void Literal_text_of_the_format_is_not_escaped()
    {
        Assert.Equal("\"\t\" 200", Render("\"\t\" %(s)s", Entry()));
    }

    // ---- parse errors ----------------------------------------------------------------------

    [Theory]
    [InlineData("%(zz)s", "unknown atom '%(zz)s'")]
    [InlineData("%(x)s", "unknown atom '%(x)s'")]
    [InlineData("%(hh)s", "unknown atom '%(hh)s'")]
    [InlineData("%()s", "unknown atom '%()s'")]
    [InlineData("%({}i)s", "unknown atom '%({}i)s'")]
    [InlineData("%({Host}x)s", "unknown atom '%({Host}x)s'")]
    [InlineData("%({Host)s", "unknown atom '%({Host)s'")]
    [InlineData("%(h)s %(", "not closed")]
    [InlineData("%(h", "not closed")]
    [InlineData("%(h)d", "not closed")]
    [InlineData("100%", "lone '%'")]
    [InlineData("%s", "lone '%'")]
    [InlineData("%d %(h)s", "lone '%'")]
    public void A_bad_format_is_a_one_line_error(string format, string expected)
    {
        Assert.False(AccessLogFormat.TryParse(format, out var result, out var error));
        Assert.Null(result);
        Assert.NotNull(error);
        Settings.AssertOneLine(error);
        Assert.Contains(expected, error);
        var thrown = Assert.Throws<FormatException>(() => AccessLogFormat.Parse(format));
        Assert.Equal(error, thrown.Message);
    }

    [Fact]
    public void The_unknown_atom_error_lists_the_known_atoms()
    {
        AccessLogFormat.TryParse("%(zz)s", out _, out var error);
        Assert.Contains("h l u t r m U q H s B b f a T M D L p {header}i {header}o {variable}e", error);
    }

    [Fact]
    public void The_position_of_an_error_is_named()
    {
        AccessLogFormat.TryParse("%(h)s %(s", out _, out var error);
        Assert.Contains("position 6", error);
    }

    [Fact]
    public void Every_atom_named_in_the_docs_parses()
    {
        var all = "%(h)s %(l)s %(u)s %(t)s %(r)s %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(b)s %(f)s %(a)s %(T)s %(M)s %(D)s %(L)s %(p)s %({x}i)s %({x}o)s %({X}e)s";
        Assert.True(AccessLogFormat.TryParse(all, out _, out var error), error);
    }
}
