using System.Net;
using System.Runtime.Versioning;
using Corral.Agent.Http;
using Corral.Settings;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Corral.Tests;

/// <summary>--forwarded-allow-ips and --secure-scheme-headers: who is believed, and what they change.</summary>
[SupportedOSPlatform("linux")]
public sealed class ProxyTrustTests
{
    private static readonly Dictionary<string, string> GunicornSchemeHeaders = SchemeHeaders(ProxyTrust.DefaultSecureSchemeHeaders);

    private static Dictionary<string, string> SchemeHeaders(string json)
    {
        Assert.True(ProxyTrust.TryParseSchemeHeaders(json, out var headers, out var error), error);
        return headers;
    }

    private static ProxyTrust Trust(string allow) => ProxyTrust.Create(allow, GunicornSchemeHeaders);

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1", true)]
    [InlineData("127.0.0.1", "127.0.0.2", false)]
    [InlineData("127.0.0.1", "::ffff:127.0.0.1", true)] // a dual-mode socket's view of an IPv4 peer
    [InlineData("127.0.0.1", "::1", false)]
    [InlineData("10.0.0.0/8", "10.200.3.4", true)]
    [InlineData("10.0.0.0/8", "11.0.0.1", false)]
    [InlineData("10.1.2.3/16", "10.1.99.1", true)] // host bits in the network are ignored
    [InlineData("192.168.1.0/24, 172.16.0.0/12", "172.31.255.255", true)]
    [InlineData("192.168.1.0/24, 172.16.0.0/12", "172.32.0.1", false)]
    [InlineData("fd00::/8", "fd12::1", true)]
    [InlineData("fd00::/8", "fe80::1", false)]
    [InlineData("*", "203.0.113.9", true)]
    [InlineData("", "127.0.0.1", false)]
    [InlineData("0.0.0.0/0", "203.0.113.9", true)]
    [InlineData("0.0.0.0/0", "2001:db8::1", false)]
    public void PeersAreTrustedOnlyWhenListed(string allow, string peer, bool trusted) =>
        Assert.Equal(trusted, Trust(allow).IsTrusted(IPAddress.Parse(peer)));

    [Fact]
    public void AUnixSocketPeerIsAlwaysTrustedAsWithGunicorn() =>
        Assert.True(Trust("").IsTrusted(null));

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("::/129")]
    [InlineData("localhost")]
    [InlineData("10.0.0.1/x")]
    [InlineData("10.0.0.1/-1")]
    [InlineData("fe80::1%eth0")]
    public void BadAllowListsAreRefusedWithTheEntry(string allow)
    {
        Assert.False(ProxyTrust.TryParseAllowIps(allow, out _, out _, out var error));
        Assert.Contains(allow, error);
    }

    [Theory]
    // The right-most address that is not a trusted proxy is the client.
    [InlineData("127.0.0.1", "203.0.113.7", "203.0.113.7")]
    [InlineData("127.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7")] // the left one is the client's own claim: not believed
    [InlineData("127.0.0.1, 10.0.0.0/8", "198.51.100.1, 203.0.113.7, 10.0.0.5", "203.0.113.7")]
    [InlineData("127.0.0.1, 10.0.0.0/8", "10.0.0.9, 10.0.0.5", "10.0.0.9")] // all trusted: the left-most
    [InlineData("127.0.0.1", "203.0.113.7:5555", "203.0.113.7")]
    [InlineData("127.0.0.1", "[2001:db8::7]:5555", "2001:db8::7")]
    [InlineData("127.0.0.1", "2001:db8::7", "2001:db8::7")]
    [InlineData("127.0.0.1", "unknown", null)] // an undecidable entry: the peer address stands
    [InlineData("127.0.0.1", "203.0.113.7, unknown", null)]
    [InlineData("127.0.0.1", "unknown, 203.0.113.7", "203.0.113.7")]
    [InlineData("127.0.0.1", "", null)]
    public void TheClientIsTheRightMostUntrustedForwardedAddress(string allow, string forwardedFor, string? client) =>
        Assert.Equal(client is null ? null : IPAddress.Parse(client), Trust(allow).ClientFrom(new StringValues(forwardedFor)));

    [Fact]
    public void SeveralForwardedForHeadersAreOneListInOrder() =>
        Assert.Equal(IPAddress.Parse("203.0.113.8"), Trust("127.0.0.1").ClientFrom(new StringValues(["198.51.100.1", "203.0.113.8"])));

    [Theory]
    [InlineData("X-Forwarded-Proto", "https", "https")]
    [InlineData("X-Forwarded-Proto", "http", "http")]
    [InlineData("x-forwarded-proto", " https ", "https")]
    [InlineData("X-Forwarded-Ssl", "on", "https")]
    [InlineData("X-Forwarded-Protocol", "ssl", "https")]
    [InlineData("X-Forwarded-Host", "example.com", null)]
    public void SchemeHeadersSayHttpsOnlyWithTheirValue(string header, string value, string? scheme)
    {
        var headers = new HeaderDictionary { [header] = value };
        Assert.Equal((scheme, null), Trust("127.0.0.1").SchemeFrom(headers));
    }

    [Fact]
    public void ContradictorySchemeHeadersAreAnError()
    {
        var headers = new HeaderDictionary { ["X-Forwarded-Proto"] = "https", ["X-Forwarded-Ssl"] = "off" };
        Assert.Equal((null, "Contradictory scheme headers"), Trust("127.0.0.1").SchemeFrom(headers));
    }

    [Fact]
    public void ATrustedPeerSetsTheRemoteAddressAndTheScheme()
    {
        var context = Request("127.0.0.1", ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"));
        Assert.Null(Trust("127.0.0.1").Apply(context));
        Assert.Equal(IPAddress.Parse("203.0.113.7"), context.Connection.RemoteIpAddress);
        Assert.Equal("https", context.Request.Scheme);
        Assert.True(context.Request.IsHttps);
    }

    [Fact]
    public void AnUntrustedPeerChangesNothing()
    {
        var context = Request("198.51.100.20", ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"));
        Assert.Null(Trust("127.0.0.1").Apply(context));
        Assert.Equal(IPAddress.Parse("198.51.100.20"), context.Connection.RemoteIpAddress);
        Assert.Equal("http", context.Request.Scheme);
    }

    [Fact]
    public void AnUntrustedPeerIsNotRefusedForContradictoryHeaders()
    {
        var context = Request("198.51.100.20", ("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off"));
        Assert.Null(Trust("127.0.0.1").Apply(context));
    }

    [Fact]
    public void AUnixSocketPeerIsBelieved()
    {
        var context = Request(null, ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Ssl", "on"));
        Assert.Null(Trust("127.0.0.1").Apply(context));
        Assert.Equal(IPAddress.Parse("203.0.113.7"), context.Connection.RemoteIpAddress);
        Assert.Equal("https", context.Request.Scheme);
    }

    [Fact]
    public void WithoutSchemeHeadersTheSchemeStays()
    {
        var trust = ProxyTrust.Create("*", SchemeHeaders("{}"));
        var context = Request("127.0.0.1", ("X-Forwarded-Proto", "https"));
        Assert.Null(trust.Apply(context));
        Assert.Equal("http", context.Request.Scheme);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("{\"X-FORWARDED-PROTO\": 1}")]
    [InlineData("{not json")]
    public void BadSchemeHeadersAreRefused(string json) =>
        Assert.False(ProxyTrust.TryParseSchemeHeaders(json, out _, out _));

    [Fact]
    public void TheSettingsHaveGunicornsDefaultsAndEnvironmentVariable()
    {
        var defaults = ConfigLoader.Load(["app.dll"], new Dictionary<string, string?>()).Config!;
        Assert.Equal("127.0.0.1", defaults.ForwardedAllowIps);
        Assert.Equal(ProxyTrust.DefaultSecureSchemeHeaders, defaults.SecureSchemeHeaders);

        var fromEnv = ConfigLoader.Load(["app.dll"], new Dictionary<string, string?> { ["FORWARDED_ALLOW_IPS"] = "10.0.0.0/8" }).Config!;
        Assert.Equal("10.0.0.0/8", fromEnv.ForwardedAllowIps);
        var cli = ConfigLoader.Load(["--forwarded-allow-ips", "*", "app.dll"], new Dictionary<string, string?> { ["FORWARDED_ALLOW_IPS"] = "10.0.0.0/8" }).Config!;
        Assert.Equal("*", cli.ForwardedAllowIps);
    }

    [Fact]
    public void ABadAllowListIsOneLineNamingTheSetting()
    {
        var result = ConfigLoader.Load(["--forwarded-allow-ips", "10.0.0.0/40", "app.dll"], new Dictionary<string, string?>());
        Assert.Null(result.Config);
        Assert.StartsWith("--forwarded-allow-ips (forwarded_allow_ips): '10.0.0.0/40' is not valid", result.Error);
        Assert.DoesNotContain("\n", result.Error!, StringComparison.Ordinal);
    }

    private static DefaultHttpContext Request(string? peer, params (string Name, string Value)[] headers)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = peer is null ? null : IPAddress.Parse(peer);
        context.Request.Scheme = "http";
        foreach (var (name, value) in headers)
        {
            context.Request.Headers[name] = value;
        }
        return context;
    }
}
