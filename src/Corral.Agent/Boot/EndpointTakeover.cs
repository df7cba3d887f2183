using System.Collections;
using System.Reflection;
using Corral.Agent.Contract;
using Corral.Agent.Http;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;

namespace Corral.Agent.Boot;

/// <summary>
/// Takes the app's own endpoints away from Kestrel, so that it listens on corral's sockets only, and
/// keeps what they asked for: the protocols (which corral's listeners then speak, unless
/// --http-protocols says otherwise: <see cref="HttpProtocolChoice"/>) and their names, which the
/// master logs once (<see cref="ServingReport"/>). Three places hold them: endpoints in code
/// (Listen*, in KestrelServerOptions), in configuration (Kestrel:Endpoints), and the server's
/// addresses (ASPNETCORE_URLS, "urls", UseUrls, app.Run(url), ASPNETCORE_HTTP_PORTS), which the host
/// copies in as it starts and which Kestrel would otherwise warn about in every worker ("Overriding
/// address(es)") before binding ours.
/// </summary>
internal sealed class EndpointTakeover(AgentOptions options)
{
    private readonly List<string> _replaced = [];
    private ProtocolDecision? _decision;

    /// <summary>Decided by <see cref="TakeKestrelEndpoints"/>; Kestrel's default before it.</summary>
    public ProtocolDecision Decision => _decision ?? HttpProtocolChoice.Decide(null, AppProtocols.None, options.Tls is not null);

    /// <summary>
    /// Run on the app's KestrelServerOptions once the app has configured them: drops its endpoints
    /// (code and configuration) and decides the protocols. Throws <see cref="ArgumentException"/> for an
    /// unreadable --http-protocols (the master checked it: only a mismatched agent could send one).
    /// </summary>
    public void TakeKestrelEndpoints(KestrelServerOptions kestrel)
    {
        var configuration = kestrel.ConfigurationLoader?.Configuration;
        var configDefaults = HttpProtocolChoice.ParseKestrel(configuration?["EndpointDefaults:Protocols"]);
        var code = CodeBackedListenOptions(kestrel);
        var endpoints = new List<AppEndpoint>();
        foreach (var listen in code?.OfType<ListenOptions>() ?? [])
        {
            // Endpoints in code got the endpoint defaults, then their own configure: what Kestrel would serve.
            endpoints.Add(new AppEndpoint(listen.ToString() ?? "?", listen.Protocols));
        }

        // The protocols an endpoint of the app gets when it says none, as Kestrel applies the defaults
        // (configuration, then code): a probe endpoint, never bound (dropped with the app's below).
        var defaults = configDefaults ?? HttpProtocols.Http1AndHttp2;
        if (code is not null)
        {
            kestrel.ListenHandle(0, probe => defaults = probe.Protocols);
            code.Clear();
        }
        var codeDefaults = defaults != (configDefaults ?? HttpProtocols.Http1AndHttp2) ? defaults : (HttpProtocols?)null;

        foreach (var endpoint in configuration?.GetSection("Endpoints").GetChildren() ?? [])
        {
            var protocols = HttpProtocolChoice.ParseKestrel(endpoint["Protocols"]) ?? defaults;
            endpoints.Add(new AppEndpoint(endpoint["Url"] ?? endpoint.Key, protocols));
        }
        // An empty configuration replaces the app's: no endpoint of its own is bound.
        kestrel.Configure(new ConfigurationBuilder().Build(), reloadOnChange: false);

        Replaced(endpoints.Select(e => e.Name));
        HttpProtocols? setting = null;
        if (options.HttpProtocols is { Length: > 0 } text)
        {
            setting = HttpProtocolChoice.TryParseSetting(text, out var parsed, out var error) ? parsed : throw new ArgumentException($"--http-protocols {text}: {error}");
        }
        _decision = HttpProtocolChoice.Decide(setting, new AppProtocols(configDefaults, codeDefaults, endpoints), options.Tls is not null);
    }

    /// <summary>
    /// Run as the app's pipeline is built (the host has copied the app's URLs into the server's
    /// addresses by then, and Kestrel has not started): empties them, so that Kestrel binds corral's
    /// listeners without its own warning about them.
    /// </summary>
    public void TakeServerAddresses(IServerAddressesFeature? addresses)
    {
        if (addresses is { Addresses.IsReadOnly: false })
        {
            Replaced(addresses.Addresses);
            addresses.Addresses.Clear();
            addresses.PreferHostingUrls = false;
        }
    }

    /// <summary>What the master logs once: the listeners' protocols and the app's endpoints they replaced.</summary>
    public ServingReport Report() => new()
    {
        Protocols = HttpProtocolChoice.Format(Decision.Protocols),
        Asked = HttpProtocolChoice.Format(Decision.Asked),
        Source = Decision.Source,
        Tls = options.Tls is not null,
        Warning = Decision.Warning,
        Replaced = [.. _replaced],
    };

    private void Replaced(IEnumerable<string> names)
    {
        foreach (var name in names)
        {
            if (!_replaced.Contains(name, StringComparer.Ordinal))
            {
                _replaced.Add(name);
            }
        }
    }

    /// <summary>Kestrel's list of the endpoints declared in code (Listen*, ListenHandle): internal, hence reflection.</summary>
    private static IList? CodeBackedListenOptions(KestrelServerOptions kestrel) =>
        typeof(KestrelServerOptions).GetProperty("CodeBackedListenOptions", BindingFlags.Instance | BindingFlags.NonPublic)?.GetValue(kestrel) as IList;
}
