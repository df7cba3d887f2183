using Corral.Agent.Metrics;
using Corral.Metrics;
using Corral.Settings;

namespace Corral.Tests;

/// <summary>--statsd-host, --statsd-prefix and --dogstatsd-tags as the master reads them: Gunicorn's address forms, the prefix, resolving once (and again at HUP).</summary>
public class StatsdSettingsTests
{
    [Theory]
    [InlineData("app", "app.")]
    [InlineData("app.", "app.")]
    [InlineData("app...", "app.")]
    [InlineData("service.app", "service.app.")]
    [InlineData("service.app.", "service.app.")]
    [InlineData("a", "a.")]
    [InlineData("", "")]
    [InlineData(".", "")]
    [InlineData(null, "")]
    public void The_prefix_ends_with_exactly_one_dot(string? prefix, string expected)
    {
        Assert.Equal(expected, StatsdFormat.NormalizePrefix(prefix));
    }

    [Fact]
    public void The_config_normalises_the_prefix_and_resolves_the_host_once()
    {
        var config = Settings.Ok("--statsd-host", "localhost:9125", "--statsd-prefix", "app..", "--dogstatsd-tags", "env:test", "App.dll");
        Assert.Equal("app.", config.StatsdPrefix);
        Assert.Equal("env:test", config.DogstatsdTags);
        Assert.Equal("localhost:9125", config.StatsdHost);
        Assert.Equal("127.0.0.1:9125", config.StatsdTarget);

        Assert.Equal("10.1.2.3:8125", Settings.Ok("--statsd-host", "10.1.2.3", "App.dll").StatsdTarget);
        Assert.Equal("[::1]:9000", Settings.Ok("--statsd-host", "[::1]:9000", "App.dll").StatsdTarget);
        Assert.Equal("unix:/run/statsd.sock", Settings.Ok("--statsd-host", "unix:/run/statsd.sock", "App.dll").StatsdTarget);

        var off = Settings.Ok("App.dll");
        Assert.Null(off.StatsdTarget);
        Assert.Equal("", off.StatsdPrefix);
    }

    [Fact]
    public void A_host_that_does_not_resolve_is_one_line_at_load()
    {
        var error = Settings.Error("--statsd-host", "no-such-host.invalid:8125", "App.dll");
        Assert.StartsWith("--statsd-host (statsd_host): 'no-such-host.invalid:8125' is not valid: cannot resolve no-such-host.invalid", error);
    }

    [Fact]
    public void A_reload_keeps_the_hosts_last_address_when_its_lookup_fails_now()
    {
        string[] argv = ["--statsd-host", "no-such-host.invalid:8125", "App.dll"];
        var reload = ConfigLoader.Load(argv, Settings.NoEnv, TextWriter.Null, new StatsdFallback("no-such-host.invalid:8125", "10.1.2.3:8125"));
        Assert.Null(reload.Error);
        Assert.Equal("10.1.2.3:8125", reload.Config!.StatsdTarget);
        var warning = Assert.Single(reload.Warnings);
        Assert.StartsWith("--statsd-host no-such-host.invalid:8125: cannot resolve no-such-host.invalid", warning);
        Assert.EndsWith("; keeping its last address, 10.1.2.3:8125", warning);
        Settings.AssertOneLine(warning);

        // Another host has no last address: the reload fails, as a start would.
        var other = ConfigLoader.Load(argv, Settings.NoEnv, TextWriter.Null, new StatsdFallback("statsd.internal:8125", "10.1.2.3:8125"));
        Assert.Null(other.Config);
        Assert.StartsWith("--statsd-host (statsd_host): 'no-such-host.invalid:8125' is not valid: cannot resolve no-such-host.invalid", other.Error);
    }

    [Fact]
    public void A_reload_looks_the_host_up_again_when_it_can()
    {
        var reload = ConfigLoader.Load(["--statsd-host", "localhost:9125", "App.dll"], Settings.NoEnv, TextWriter.Null,
            new StatsdFallback("localhost:9125", "10.9.9.9:9125"));
        Assert.Equal("127.0.0.1:9125", reload.Config!.StatsdTarget);
        Assert.Empty(reload.Warnings);
    }

    [Theory]
    [InlineData("127.0.0.1:8125", "127.0.0.1", 8125, null)]
    [InlineData("statsd.local", "statsd.local", 8125, null)]
    [InlineData("statsd.local:9125", "statsd.local", 9125, null)]
    [InlineData("[::1]:8126", "::1", 8126, null)]
    [InlineData("[::1]", "::1", 8125, null)]
    [InlineData("unix:/run/statsd.sock", null, 0, "/run/statsd.sock")]
    [InlineData("unix:///run/statsd.sock", null, 0, "/run/statsd.sock")]
    [InlineData("unix:relative.sock", null, 0, "relative.sock")]
    [InlineData("unix:8125", "unix", 8125, null)]
    public void Addresses_parse_as_Gunicorn_reads_them(string text, string? host, int port, string? path)
    {
        Assert.True(StatsdAddress.TryParse(text, out var address, out var error), error);
        Assert.Equal(new StatsdAddress(host, port, path), address);
    }

    [Theory]
    [InlineData("127.0.0.1:")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("::1:8125")]
    [InlineData("[::1]8125")]
    [InlineData(":8125")]
    [InlineData("unix:")]
    [InlineData("unix://")]
    public void Bad_addresses_are_refused(string text)
    {
        Assert.False(StatsdAddress.TryParse(text, out var address, out var error));
        Assert.Null(address);
        Assert.False(string.IsNullOrEmpty(error));
    }
}
