using Corral.Agent.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Corral.Tests;

/// <summary>--http-protocols, and the rule that picks what corral's listeners speak from it, the app's Kestrel configuration and code, and TLS.</summary>
public sealed class HttpProtocolChoiceTests
{
    private const HttpProtocols H1 = HttpProtocols.Http1, H2 = HttpProtocols.Http2, Both = HttpProtocols.Http1AndHttp2;

    [Theory]
    [InlineData("h1", H1)]
    [InlineData("h2", H2)]
    [InlineData("h2,h1", Both)]
    [InlineData("h1,h2", Both)]
    [InlineData(" H2 , h1 ", Both)]
    public void TheSettingTakesGunicornsNames(string text, HttpProtocols expected)
    {
        Assert.True(HttpProtocolChoice.TryParseSetting(text, out var protocols, out var error), error);
        Assert.Equal(expected, protocols);
    }

    [Theory]
    [InlineData("h3", "UDP")]
    [InlineData("h2c", "give h2")]
    [InlineData("http2", "unknown protocol 'http2'")]
    [InlineData("Http2", "unknown protocol 'Http2'")]
    [InlineData("h2,h2", "twice")]
    [InlineData("h1,", "empty")]
    [InlineData(",", "empty")]
    public void ABadValueSaysWhy(string text, string why)
    {
        Assert.False(HttpProtocolChoice.TryParseSetting(text, out _, out var error));
        Assert.Contains(why, error);
    }

    [Fact]
    public void FormatIsTheSettingsForm()
    {
        Assert.Equal(("h1", "h2", "h2,h1", "h2,h1"), (HttpProtocolChoice.Format(H1), HttpProtocolChoice.Format(H2), HttpProtocolChoice.Format(Both), HttpProtocolChoice.Format(HttpProtocols.Http1AndHttp2AndHttp3)));
    }

    [Theory]
    [InlineData("Http2", H2)]
    [InlineData("http1AndHttp2", Both)]
    [InlineData("Http1AndHttp2AndHttp3", HttpProtocols.Http1AndHttp2AndHttp3)]
    [InlineData("h2", null)]
    [InlineData("", null)]
    [InlineData(null, null)]
    [InlineData("42", null)]
    public void KestrelsConfigurationValuesAreReadAsKestrelReadsThem(string? value, HttpProtocols? expected) =>
        Assert.Equal(expected, HttpProtocolChoice.ParseKestrel(value));

    [Fact]
    public void NothingAskedIsKestrelsDefaultWhichWithoutTlsIsHttp1()
    {
        var plain = HttpProtocolChoice.Decide(null, AppProtocols.None, tls: false);
        Assert.Equal(new ProtocolDecision(H1, Both, HttpProtocolChoice.KestrelDefault), plain);
        var tls = HttpProtocolChoice.Decide(null, AppProtocols.None, tls: true);
        Assert.Equal(new ProtocolDecision(Both, Both, HttpProtocolChoice.KestrelDefault), tls);
    }

    [Fact]
    public void TheGrpcTemplatesEndpointDefaultsGiveH2c()
    {
        // dotnet new grpc: "Kestrel": { "EndpointDefaults": { "Protocols": "Http2" } }
        var decision = HttpProtocolChoice.Decide(null, new AppProtocols(H2, null, []), tls: false);
        Assert.Equal(new ProtocolDecision(H2, H2, HttpProtocolChoice.ConfigDefaultsSource), decision);
        Assert.Equal(H2, HttpProtocolChoice.Decide(null, new AppProtocols(H2, null, []), tls: true).Protocols);
    }

    [Fact]
    public void CodeDefaultsWinOverConfigurationDefaultsAsInKestrel()
    {
        var decision = HttpProtocolChoice.Decide(null, new AppProtocols(H2, H1, []), tls: false);
        Assert.Equal(new ProtocolDecision(H1, H1, HttpProtocolChoice.CodeDefaultsSource), decision);
    }

    [Fact]
    public void EndpointsThatAgreeDecide()
    {
        var app = new AppProtocols(null, null, [new AppEndpoint("http://*:5000", H2), new AppEndpoint("http://*:5001", H2)]);
        var decision = HttpProtocolChoice.Decide(null, app, tls: false);
        Assert.Equal(H2, decision.Protocols);
        Assert.Equal("the app's endpoints (http://*:5000, http://*:5001)", decision.Source);
        Assert.Null(decision.Warning);
    }

    [Fact]
    public void EndpointsThatFollowTheDefaultsNameTheDefaults()
    {
        var app = new AppProtocols(H2, null, [new AppEndpoint("http://*:5000", H2)]);
        Assert.Equal(HttpProtocolChoice.ConfigDefaultsSource, HttpProtocolChoice.Decide(null, app, tls: false).Source);
    }

    [Fact]
    public void EndpointsThatDisagreeLeaveTheDefaultsAndAWarning()
    {
        // REST on one port, gRPC on another: corral's listeners cannot speak both without TLS.
        var app = new AppProtocols(null, null, [new AppEndpoint("http://*:5000", H1), new AppEndpoint("http://*:5001", H2)]);
        var decision = HttpProtocolChoice.Decide(null, app, tls: false);
        Assert.Equal((H1, Both, HttpProtocolChoice.KestrelDefault), (decision.Protocols, decision.Asked, decision.Source));
        Assert.Contains("http://*:5000 Http1, http://*:5001 Http2", decision.Warning);
        Assert.Contains("--http-protocols", decision.Warning);
        var withDefaults = HttpProtocolChoice.Decide(null, app with { ConfigDefaults = H2 }, tls: false);
        Assert.Equal((H2, HttpProtocolChoice.ConfigDefaultsSource), (withDefaults.Protocols, withDefaults.Source));
    }

    [Theory]
    [InlineData(H1, false, H1)]
    [InlineData(H2, false, H2)]
    [InlineData(Both, false, H1)]
    [InlineData(H1, true, H1)]
    [InlineData(H2, true, H2)]
    [InlineData(Both, true, Both)]
    public void TheSettingWinsOverEverythingTheAppSays(HttpProtocols setting, bool tls, HttpProtocols spoken)
    {
        var app = new AppProtocols(H2, H2, [new AppEndpoint("http://*:5001", H2)]);
        var decision = HttpProtocolChoice.Decide(setting, app, tls);
        Assert.Equal(new ProtocolDecision(spoken, setting, HttpProtocolChoice.SettingSource), decision);
    }

    [Fact]
    public void Http3IsLeftOutCorralsListenersAreTcp()
    {
        var decision = HttpProtocolChoice.Decide(null, new AppProtocols(HttpProtocols.Http1AndHttp2AndHttp3, null, []), tls: true);
        Assert.Equal(Both, decision.Protocols);
        var only3 = HttpProtocolChoice.Decide(null, new AppProtocols(HttpProtocols.Http3, null, []), tls: true);
        Assert.Equal(Both, only3.Protocols);
        Assert.Contains("HTTP/3 only", only3.Source);
    }

    [Fact]
    public void TheLogLineSaysWhatTheListenerSpeaksAndWhoChose()
    {
        Assert.Equal("Protocols at http://127.0.0.1:8000: h2 (HTTP/2 without TLS: prior knowledge only, as gRPC clients and nginx's grpc_pass speak it; HTTP/1.x requests get 400), from the app's Kestrel:EndpointDefaults:Protocols",
            HttpProtocolChoice.Describe("http://127.0.0.1:8000", H2, H2, HttpProtocolChoice.ConfigDefaultsSource, tls: false));
        Assert.Equal("Protocols at http://127.0.0.1:8000: h1 (HTTP/1.1), from Kestrel's default",
            HttpProtocolChoice.Describe("http://127.0.0.1:8000", H1, Both, HttpProtocolChoice.KestrelDefault, tls: false));
        Assert.Contains("h1 (HTTP/1.1 only: without TLS Kestrel speaks HTTP/2 only on a listener that speaks nothing else (--http-protocols h2))",
            HttpProtocolChoice.Describe("http://127.0.0.1:8000", H1, Both, HttpProtocolChoice.SettingSource, tls: false));
        Assert.Equal("Protocols at https://127.0.0.1:8443: h2,h1 (HTTP/2 and HTTP/1.1, by ALPN), from Kestrel's default",
            HttpProtocolChoice.Describe("https://127.0.0.1:8443", Both, Both, HttpProtocolChoice.KestrelDefault, tls: true));
        Assert.Contains("h2 (HTTP/2 only, ALPN h2)", HttpProtocolChoice.Describe("unix:/run/app.sock", H2, H2, HttpProtocolChoice.SettingSource, tls: true));
    }
}
