using Corral.Listeners;
using Corral.Metrics;

namespace Corral.Tests;

/// <summary>The one HOST:PORT splitter, and the three settings that read their addresses with it.</summary>
public sealed class HostPortTests
{
    [Theory]
    [InlineData("127.0.0.1:8000", "127.0.0.1", "8000", false)]
    [InlineData("example.com", "example.com", null, false)]
    [InlineData("example.com:", "example.com", "", false)]
    [InlineData(":80", "", "80", false)]
    [InlineData("", "", null, false)]
    [InlineData("host:http", "host", "http", false)]
    [InlineData("[::1]:8000", "::1", "8000", true)]
    [InlineData("[::1]", "::1", null, true)]
    [InlineData("[::1]:", "::1", "", true)]
    [InlineData("[]:80", "", "80", true)]
    // Only the text after the first ] is the port: its own colons are the caller's to refuse.
    [InlineData("[::1]:80:90", "::1", "80:90", true)]
    public void A_host_and_its_port_split_at_the_colon_or_after_the_brackets(string text, string host, string? port, bool bracketed)
    {
        Assert.True(HostPort.TrySplit(text, out var parts, out var problem));
        Assert.Equal(HostPortProblem.None, problem);
        Assert.Equal(new HostPort(host, port, bracketed), parts);
    }

    [Theory]
    [InlineData("::1:80", HostPortProblem.BareIPv6)]
    [InlineData("::1", HostPortProblem.BareIPv6)]
    [InlineData("a:b:c", HostPortProblem.BareIPv6)]
    [InlineData("[::1:80", HostPortProblem.UnclosedBracket)]
    [InlineData("[", HostPortProblem.UnclosedBracket)]
    [InlineData("[::1]80", HostPortProblem.AfterBracket)]
    [InlineData("[::1]]:80", HostPortProblem.AfterBracket)]
    public void A_bare_IPv6_address_or_broken_brackets_are_named(string text, HostPortProblem expected)
    {
        Assert.False(HostPort.TrySplit(text, out _, out var problem));
        Assert.Equal(expected, problem);
    }

    [Fact]
    public void A_bare_IPv6_address_still_splits_at_its_last_colon_for_a_caller_that_reads_the_port_first()
    {
        HostPort.TrySplit("::1:x", out var parts, out _);
        Assert.Equal(new HostPort("::1", "x", false), parts);
    }

    /// <summary>Each setting keeps its default port, its host rules and its own wording of the same mistakes.</summary>
    [Theory]
    [InlineData("::1:80", "an IPv6 address goes in brackets: [::1]:8000", "'::1:80': write an IPv6 address in brackets, [::1]:9100", "an IPv6 address goes in brackets: [::1]:8125")]
    [InlineData("[::1:80", "an IPv6 address goes in brackets: [::1]:8000", "'[::1:80' is not HOST:PORT (e.g. 127.0.0.1:9100)", "an IPv6 address goes in brackets: [::1]:8125")]
    [InlineData("[::1]80", "'' is not a port (0-65535)", "'[::1]80' is not HOST:PORT (e.g. 127.0.0.1:9100)", "expected [IPv6]:PORT")]
    [InlineData("[nothost]:80", "'nothost' is not an IPv6 address", "'[nothost]:80': HOST must be an IP address or localhost", "an IPv6 address goes in brackets: [::1]:8125")]
    [InlineData("127.0.0.1:http", "'http' is not a port (0-65535)", "'127.0.0.1:http' is not HOST:PORT (e.g. 127.0.0.1:9100)", "'127.0.0.1:http' has no port from 1 to 65535")]
    [InlineData(":80", null, "':80' is not HOST:PORT (e.g. 127.0.0.1:9100)", "no host")]
    [InlineData("example.com:80", null, "'example.com:80': HOST must be an IP address or localhost", null)]
    public void The_three_address_settings_word_their_errors_their_own_way(string text, string? bind, string? metrics, string? statsd)
    {
        BindAddress.TryParse(text, out _, out var bindError);
        MetricsServer.ParseBind(text, out var metricsError);
        StatsdAddress.TryParse(text, out _, out var statsdError);
        Assert.Equal((bind, metrics, statsd), (bindError, metricsError, statsdError));
    }

    [Theory]
    [InlineData("[::1]", "http://[::1]:8000", null, "::1:8125")]
    [InlineData("10.0.0.1", "http://10.0.0.1:8000", null, "10.0.0.1:8125")]
    [InlineData(":9", "http://0.0.0.0:9", null, null)]
    [InlineData("localhost:9", "http://localhost:9", "127.0.0.1:9", "localhost:9")]
    [InlineData("[::1]:0", "http://[::1]:0", "[::1]:0", null)]
    public void Each_keeps_its_default_port_and_its_hosts(string text, string? bind, string? metrics, string? statsd)
    {
        var b = BindAddress.TryParse(text, out var bindAddress, out _) ? bindAddress!.ToString() : null;
        var m = MetricsServer.ParseBind(text, out _)?.ToString();
        var s = StatsdAddress.TryParse(text, out var statsdAddress, out _) ? $"{statsdAddress!.Host}:{statsdAddress.Port}" : null;
        Assert.Equal((bind, metrics, statsd), (b, m, s));
    }
}
