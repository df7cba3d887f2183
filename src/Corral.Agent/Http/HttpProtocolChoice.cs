using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Corral.Agent.Http;

/// <summary>One endpoint the app declared (in configuration or code) and the protocols Kestrel would give it.</summary>
public sealed record AppEndpoint(string Name, HttpProtocols Protocols);

/// <summary>
/// What the app asks of its endpoints, as Kestrel reads it: the endpoint defaults from configuration
/// (Kestrel:EndpointDefaults:Protocols) and from code (ConfigureEndpointDefaults; null when the code
/// leaves them), and its own endpoints, each with the protocols Kestrel would give it.
/// </summary>
public sealed record AppProtocols(HttpProtocols? ConfigDefaults, HttpProtocols? CodeDefaults, IReadOnlyList<AppEndpoint> Endpoints)
{
    public static readonly AppProtocols None = new(null, null, []);
}

/// <summary>
/// The protocols corral's listeners speak: <paramref name="Protocols"/> is what Kestrel is told;
/// <paramref name="Asked"/> what the setting or the app asked for (they differ only for HTTP/1.1 and
/// HTTP/2 without TLS, which Kestrel serves as HTTP/1.1); <paramref name="Source"/> who asked, as the
/// log says it; <paramref name="Warning"/> something the operator should act on (the app's endpoints
/// disagree), or null.
/// </summary>
public sealed record ProtocolDecision(HttpProtocols Protocols, HttpProtocols Asked, string Source, string? Warning = null);

/// <summary>
/// Which HTTP versions corral's listeners speak (--http-protocols, or the app's own Kestrel
/// configuration): a pure rule, decided once per worker, with the log's wording of the result.
/// <para>
/// Kestrel without TLS cannot tell HTTP/1.1 from HTTP/2 on one listener (no ALPN, and it does not sniff
/// the HTTP/2 preface): a listener of HTTP/1.1 and HTTP/2 speaks HTTP/1.1 only, and one of HTTP/2 alone
/// speaks HTTP/2 by prior knowledge (h2c) and answers HTTP/1.x with 400. With TLS, ALPN offers what is
/// asked. HTTP/3 needs a UDP (QUIC) listener, which corral does not bind: it is left out.
/// </para>
/// </summary>
public static class HttpProtocolChoice
{
    /// <summary>The source named when nothing asked: Kestrel's own default, HTTP/1.1 and HTTP/2.</summary>
    public const string KestrelDefault = "Kestrel's default";

    public const string SettingSource = "--http-protocols";

    public const string ConfigDefaultsSource = "the app's Kestrel:EndpointDefaults:Protocols";

    public const string CodeDefaultsSource = "the app's ConfigureEndpointDefaults";

    /// <summary>--http-protocols' accepted form, as the settings say it.</summary>
    public const string Accepted = "h1, h2, or both separated by a comma (h2,h1)";

    /// <summary>
    /// Parses --http-protocols as Gunicorn writes it: h1, h2, or both, comma-separated, in any order
    /// (Kestrel's ALPN prefers h2 whatever the order). False, with a reason, for anything else.
    /// </summary>
    public static bool TryParseSetting(string text, out HttpProtocols protocols, out string? error)
    {
        protocols = HttpProtocols.None;
        error = null;
        foreach (var raw in text.Split(','))
        {
            var token = raw.Trim().ToLowerInvariant();
            var one = token switch
            {
                "h1" => HttpProtocols.Http1,
                "h2" => HttpProtocols.Http2,
                _ => HttpProtocols.None,
            };
            if (one == HttpProtocols.None)
            {
                error = token switch
                {
                    "" => "an empty protocol name",
                    "h3" => "h3 (HTTP/3) needs a UDP listener, which corral does not bind",
                    "h2c" => "h2c is h2 without --certfile: give h2",
                    _ => $"unknown protocol '{raw.Trim()}'",
                };
                return false;
            }
            if ((protocols & one) != 0)
            {
                error = $"{token} is given twice";
                return false;
            }
            protocols |= one;
        }
        return true;
    }

    /// <summary>The setting's form of <paramref name="protocols"/>: h1, h2 or h2,h1 (HTTP/3 left out).</summary>
    public static string Format(HttpProtocols protocols) => (protocols & HttpProtocols.Http1AndHttp2) switch
    {
        HttpProtocols.Http1 => "h1",
        HttpProtocols.Http2 => "h2",
        HttpProtocols.Http1AndHttp2 => "h2,h1",
        _ => "none",
    };

    /// <summary>A Kestrel "Protocols" value as Kestrel's configuration reader takes it (Http2, http1AndHttp2, ...); null if absent or not one.</summary>
    public static HttpProtocols? ParseKestrel(string? value) =>
        Enum.TryParse<HttpProtocols>(value, ignoreCase: true, out var p) && Enum.IsDefined(p) ? p : null;

    /// <summary>
    /// Decides the listeners' protocols. The setting, when given, wins. Otherwise the app's endpoints,
    /// when they all agree (they are replaced by corral's listeners, which speak what they spoke);
    /// when they disagree, or there are none, the endpoint defaults (code over configuration, as
    /// Kestrel applies them), else Kestrel's default. Without TLS, HTTP/1.1 and HTTP/2 together become
    /// HTTP/1.1, which is what Kestrel does with them there anyway (and it warns in every worker).
    /// </summary>
    public static ProtocolDecision Decide(HttpProtocols? setting, AppProtocols app, bool tls)
    {
        var decision = setting is { } s ? new ProtocolDecision(s, s, SettingSource) : FromApp(app);
        // HTTP/3 is QUIC over UDP: corral's listeners are TCP sockets.
        var asked = decision.Asked & HttpProtocols.Http1AndHttp2;
        if (asked == HttpProtocols.None)
        {
            asked = HttpProtocols.Http1AndHttp2;
            decision = decision with { Source = decision.Source + " (HTTP/3 only: corral's listeners are TCP, so Kestrel's default instead)" };
        }
        var spoken = !tls && asked == HttpProtocols.Http1AndHttp2 ? HttpProtocols.Http1 : asked;
        return decision with { Protocols = spoken, Asked = asked };
    }

    private static ProtocolDecision FromApp(AppProtocols app)
    {
        var (defaults, defaultsSource) = app.CodeDefaults is { } code ? (code, CodeDefaultsSource)
            : app.ConfigDefaults is { } config ? (config, ConfigDefaultsSource)
            : (HttpProtocols.Http1AndHttp2, KestrelDefault);
        var distinct = app.Endpoints.Select(e => e.Protocols).Distinct().ToList();
        if (distinct.Count == 1 && distinct[0] != defaults)
        {
            var names = string.Join(", ", app.Endpoints.Select(e => e.Name));
            return new ProtocolDecision(distinct[0], distinct[0], $"the app's endpoint{(app.Endpoints.Count > 1 ? "s" : "")} ({names})");
        }
        if (distinct.Count > 1)
        {
            var each = string.Join(", ", app.Endpoints.Select(e => $"{e.Name} {e.Protocols}"));
            return new ProtocolDecision(defaults, defaults, defaultsSource,
                $"The app's Kestrel endpoints ask for different protocols ({each}): corral's listeners all speak {Format(defaults)} ({defaultsSource}); choose with --http-protocols");
        }
        return new ProtocolDecision(defaults, defaults, defaultsSource);
    }

    /// <summary>
    /// The master's line for one listener: what it speaks, and who chose it, e.g. "Protocols at
    /// http://127.0.0.1:8000: h2 (HTTP/2 without TLS: prior knowledge only, as gRPC clients and
    /// nginx's grpc_pass speak it; HTTP/1.x requests get 400), from the app's Kestrel:EndpointDefaults:Protocols".
    /// </summary>
    public static string Describe(string listener, HttpProtocols spoken, HttpProtocols asked, string source, bool tls)
    {
        var what = (spoken & HttpProtocols.Http1AndHttp2, tls) switch
        {
            (HttpProtocols.Http1, false) when asked == HttpProtocols.Http1AndHttp2 && source != KestrelDefault =>
                "HTTP/1.1 only: without TLS Kestrel speaks HTTP/2 only on a listener that speaks nothing else (--http-protocols h2)",
            (HttpProtocols.Http1, false) => "HTTP/1.1",
            (HttpProtocols.Http2, false) => "HTTP/2 without TLS: prior knowledge only, as gRPC clients and nginx's grpc_pass speak it; HTTP/1.x requests get 400",
            (HttpProtocols.Http1, true) => "HTTP/1.1, ALPN http/1.1",
            (HttpProtocols.Http2, true) => "HTTP/2 only, ALPN h2",
            (HttpProtocols.Http1AndHttp2, true) => "HTTP/2 and HTTP/1.1, by ALPN",
            _ => "?",
        };
        return $"Protocols at {listener}: {Format(spoken)} ({what}), from {source}";
    }
}
