using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Corral.Agent.Http;
using Corral.Agent.Http.Affinity;
using Corral.Agent.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Boot;

/// <summary>
/// Takes over the app's host while it is built (the hosting diagnostics event "HostBuilding", the
/// hook the framework's own test host uses): Kestrel listens on corral's inherited sockets only,
/// with corral's limits, behind corral's admission gate and outermost middleware.
/// </summary>
internal static class HostTakeover
{
    public static void Apply(object hostBuilder)
    {
        var builder = (IHostBuilder)hostBuilder;
        var options = AgentRuntime.Options;
        builder.ConfigureServices((_, services) => Configure(services, options));
    }

    /// <summary>Once built: the host must run Kestrel, or corral has nothing to serve with.</summary>
    public static void Verify(object host)
    {
        var services = ((IHost)host).Services;
        var server = services.GetService<IServer>();
        if (server is null)
        {
            AgentRuntime.FailBoot("the app's host has no web server: corral runs ASP.NET Core web apps (WebApplication or ConfigureWebHostDefaults), not plain generic-host services");
        }
        else if (server.GetType().FullName?.Contains("Kestrel", StringComparison.Ordinal) != true)
        {
            AgentRuntime.FailBoot($"the app uses the server {server.GetType().FullName}; corral serves through Kestrel only");
        }
    }

    private static void Configure(IServiceCollection services, AgentOptions options)
    {
        var gate = AdmissionGate.For(options);
        if (options.Spare)
        {
            gate.HoldUntilPromoted(AgentRuntime.Promoted);
        }
        var warmup = options.Warmup.Requests > 0 ? new Warmup(options, gate, AgentRuntime.Log) : null;
        // The master names a leader for async workers under --accept-policy pack only.
        var packing = options.AcceptLeader is { Length: > 0 } leader ? new AcceptPacking(leader, gate, options.PackLeaderConnections) : null;
        SizeThreadPool(options);
        // --max-worker-memory: judged in the worker, which knows both its PSS and its GC.
        MemoryWatch.Start(options, gate);

        services.AddSingleton(options);
        services.AddSingleton(gate);
        services.AddSingleton(AgentRuntime.Stats);
        services.AddSingleton(new LongLivedConnections(options));
        services.AddSingleton(sp =>
        {
            var middleware = new CorralMiddleware(
                sp.GetRequiredService<AgentOptions>(), sp.GetRequiredService<AdmissionGate>(), sp.GetRequiredService<RequestStats>(), AgentRuntimeReports.Instance,
                AffinityRouter.For(options, gate, sp.GetRequiredService<IHostApplicationLifetime>()),
                sp.GetRequiredService<LongLivedConnections>());
            // A starvation report names the endpoints being served when the running requests are kept
            // (--request-timeout): keeping them costs a lock per request, not paid for this alone.
            if (middleware.Running is { } running)
            {
                StarvationGuard.ServingNow = running.Summary;
            }
            return middleware;
        });
        // First in the list = outermost in the pipeline: before anything the app or the framework adds.
        services.Insert(0, ServiceDescriptor.Singleton<IStartupFilter, CorralStartupFilter>());
        var endpoints = new EndpointTakeover(options);
        services.Insert(1, ServiceDescriptor.Singleton<IStartupFilter>(new AppUrlsFilter(endpoints)));
        services.AddHostedService(sp => new CorralLifetime(sp.GetRequiredService<IHostApplicationLifetime>(), warmup));
        // Replaces the console lifetime: TERM drains first (see CorralHostLifetime).
        services.AddSingleton<IHostLifetime, CorralHostLifetime>();
        services.AddSingleton<ILoggerProvider, BootErrorLoggerProvider>();

        // Registered last, so Kestrel tries it first (it walks the transport factories in reverse).
        services.AddSingleton<IConnectionListenerFactory>(sp => new GatedListenerFactory(
            new SocketTransportFactory(sp.GetRequiredService<IOptions<SocketTransportOptions>>(), sp.GetRequiredService<ILoggerFactory>()),
            gate, warmup, packing));

        services.PostConfigure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(options.GracefulTimeout));
        // Kestrel calls listen(2) again on each inherited socket, with its own backlog unless told: --backlog.
        services.PostConfigure<SocketTransportOptions>(o => o.Backlog = options.Backlog > 0 ? options.Backlog : o.Backlog);
        services.PostConfigure<KestrelServerOptions>(k => ConfigureKestrel(k, options, gate, warmup, endpoints));
    }

    private static void ConfigureKestrel(KestrelServerOptions kestrel, AgentOptions options, AdmissionGate gate, Warmup? warmup, EndpointTakeover endpoints)
    {
        // The app's endpoints (code and configuration) go: corral owns the sockets. What they asked for stays.
        try
        {
            endpoints.TakeKestrelEndpoints(kestrel);
        }
        catch (ArgumentException e)
        {
            AgentRuntime.FailBoot(e.Message);
        }
        var protocols = endpoints.Decision.Protocols;

        Action<ListenOptions>? tls = null;
        try
        {
            tls = Tls.ForListeners(options);
        }
        catch (TlsException e)
        {
            AgentRuntime.FailBoot(e.Message);
        }
        // --proxy-protocol: the header comes first on the wire, so its middleware is the outermost (before TLS).
        var proxyProtocol = options.Proxy.ProxyProtocol
            ? ProxyProtocol.Middleware(ProxyTrust.Create(options.Proxy.ForwardedAllowIps, null), kestrel.Limits.RequestHeadersTimeout, AgentRuntime.Log.Warning)
            : null;
        foreach (var fd in options.ListenFds)
        {
            kestrel.ListenHandle((ulong)fd, listen =>
            {
                // Before TLS: its ALPN offers these.
                listen.Protocols = protocols;
                if (proxyProtocol is not null)
                {
                    listen.Use(proxyProtocol);
                }
                tls?.Invoke(listen);
                if (gate.OneRequestAtATime)
                {
                    // Innermost: sees the request's first bytes as HTTP sees them (after PROXY and TLS).
                    listen.Use(HeadTurn.Watch);
                }
            });
        }
        if (!string.IsNullOrEmpty(options.AffinityDir))
        {
            AffinityListener.Listen(kestrel, options.AffinityDir);
        }
        if (warmup is not null)
        {
            // In memory, plain HTTP/1.1: no TLS or PROXY header to speak (see Warmup).
            kestrel.Listen(warmup.Endpoint, listen => listen.Protocols = HttpProtocols.Http1);
        }

        var limits = kestrel.Limits;
        limits.KeepAliveTimeout = options.KeepAlive > 0 ? TimeSpan.FromSeconds(options.KeepAlive) : TimeSpan.FromMilliseconds(1);
        limits.MaxRequestLineSize = options.Limits.RequestLine > 0 ? options.Limits.RequestLine + 2 : 1024 * 1024;
        limits.MaxRequestHeaderCount = options.Limits.RequestFields > 0 ? options.Limits.RequestFields : 10_000;
        // What one connection may make the worker hold before its head ends: not fields x field size
        // (Gunicorn's implicit total, ~800 KB), which a worker holding many connections pays for each.
        limits.MaxRequestHeadersTotalSize = options.Limits.RequestHeadersSize > 0 ? options.Limits.RequestHeadersSize : limits.MaxRequestHeadersTotalSize;
    }

    /// <summary>
    /// Blocking handlers need threads, not just connections (the pool otherwise adds a thread about
    /// every 0.5 s once its minimum is busy): gthread raises the minimum to --threads at once; async
    /// raises it only when the pool is seen starving (<see cref="StarvationGuard"/>).
    /// </summary>
    private static void SizeThreadPool(AgentOptions options)
    {
        switch (WorkerClassPolicy.For(options.WorkerClass).ThreadPool)
        {
            case ThreadPoolSizing.MinimumForThreads:
                // N blocking handlers at once, from the first request.
                ThreadPool.GetMinThreads(out var workers, out var io);
                var target = WorkerClassPolicy.MinimumThreads(options.Threads, Environment.ProcessorCount);
                if (workers < target)
                {
                    ThreadPool.SetMinThreads(target, io);
                }
                break;
            case ThreadPoolSizing.StarvationGuard:
                StarvationGuard.Start(cap: WorkerClassPolicy.StarvationCap(options.WorkerConnections, Environment.ProcessorCount));
                break;
        }
    }
}
