using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.Agent.Contract;
using Corral.IntegrationTests.Deployment;
using Corral.IntegrationTests.Grpc;
using Corral.IntegrationTests.Infrastructure;
using Grpc.Core;
using Grpc.Net.Client;

namespace Corral.IntegrationTests;

/// <summary>
/// A fresh `dotnet new grpc` service under corral, called with Grpc.Net.Client: HTTP/2 without TLS
/// (h2c, as the template's appsettings.json asks), across a HUP, with TLS (ALPN h2), and
/// --http-protocols, which wins over the app. The master says once per listener what it speaks,
/// and once what it replaced of the app's own URLs (Kestrel's own warning stays out).
/// </summary>
public sealed class GrpcTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(60);
    private const string H2cLine = @"h2 \(HTTP/2 without TLS: prior knowledge only, as gRPC clients and nginx's grpc_pass speak it; HTTP/1\.x requests get 400\), from the app's Kestrel:EndpointDefaults:Protocols$";
    private const string TemplateRootText = "Communication with gRPC endpoints must be made through a gRPC client";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task TwentyCallsOfTwentySucceedOverH2cUnderTwoWorkersAndEachListenerSaysItOnce()
    {
        var app = await GrpcApps.ServiceAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "-b", "127.0.0.1:0", "--log-level", "debug", app]);
        var ports = await PortsAsync(corral, 2);
        await corral.WaitForWorkersAsync(2, Boot);

        // 10 calls per listener, each on a new connection (a new channel): 0 of 20 before corral honoured the app's Http2.
        var failures = new List<string>();
        foreach (var port in ports)
        {
            for (var i = 0; i < 10; i++)
            {
                using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
                try
                {
                    var reply = await new Greeter.GreeterClient(channel).SayHelloAsync(new HelloRequest { Name = $"corral {i}" }, deadline: DateTime.UtcNow.AddSeconds(20));
                    Assert.Equal($"Hello corral {i}", reply.Message);
                }
                catch (RpcException e)
                {
                    failures.Add($"{port}: {e.Status}");
                }
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of 20 calls failed: {string.Join("; ", failures.Distinct())}");

        // Once per listener in the master's log, not once per worker.
        foreach (var port in ports)
        {
            Assert.Equal(1, corral.CountLines($@"\[{corral.Pid}\] \[INFO\] Protocols at http://127\.0\.0\.1:{port}: " + H2cLine));
        }
        Assert.Equal(2, corral.CountLines("Protocols at "));
        // HTTP/1.x gets Kestrel's 400 on an HTTP/2-only listener, as the app alone answers it.
        var (status, body) = await Http.GetAsync(ports[0], "/");
        Assert.Equal((400, "An HTTP/1.x request was sent to an HTTP/2 only endpoint."), (status, body));
    }

    [Fact]
    public async Task TheAppsOwnUrlsAreReplacedWithOneLineOfCorralsAndNoneOfKestrels()
    {
        var app = await GrpcApps.ServiceAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", app],
            new Dictionary<string, string> { ["ASPNETCORE_URLS"] = "http://127.0.0.1:19150" });
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);
        // Each worker's Kestrel says where it listens after it would have warned about the app's URLs.
        await corral.WaitForLineAsync($"Now listening on: http://127.0.0.1:{port}", Boot, occurrence: 2);
        Assert.Equal(0, corral.CountLines("Overriding address"));
        Assert.Equal(1, corral.CountLines($@"^\[[^]]+\] \[{corral.Pid}\] \[INFO\] Overriding the app's own URLs and Kestrel endpoints \(http://127\.0\.0\.1:19150\): serving on corral's listeners \(http://127\.0\.0\.1:{port}\)$"));
        Assert.Equal(1, corral.CountLines("Overriding the app's own URLs"));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => Http.GetAsync(19150, "/"));
    }

    [Fact]
    public async Task CallsKeepSucceedingAcrossAHup()
    {
        var app = await GrpcApps.ServiceAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", "--graceful-timeout", "20", app]);
        var port = await corral.PortAsync();
        var old = await corral.WaitForWorkersAsync(2, Boot);

        var failures = new ConcurrentQueue<string>();
        var ok = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        // A real client's channel (one HTTP/2 connection, many calls) in three loops, and one loop
        // that opens a new connection for every call.
        using var shared = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        async Task LoopAsync(int id, bool newChannelEachCall)
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var channel = newChannelEachCall ? GrpcChannel.ForAddress($"http://127.0.0.1:{port}") : shared;
                try
                {
                    var name = $"{id}-{i}";
                    var reply = await new Greeter.GreeterClient(channel).SayHelloAsync(new HelloRequest { Name = name }, deadline: DateTime.UtcNow.AddSeconds(20));
                    if (reply.Message == "Hello " + name)
                    {
                        Interlocked.Increment(ref ok);
                    }
                    else
                    {
                        failures.Enqueue("wrong reply: " + reply.Message);
                    }
                }
                catch (RpcException e)
                {
                    failures.Enqueue(e.Status.ToString());
                }
                finally
                {
                    if (newChannelEachCall)
                    {
                        channel.Dispose();
                    }
                }
            }
        }
        var loops = new[] { LoopAsync(0, false), LoopAsync(1, false), LoopAsync(2, false), LoopAsync(3, true) };

        await WaitUntilAsync(() => Volatile.Read(ref ok) >= 40, "40 calls before the HUP");
        corral.Signal(Signals.HUP);
        var fresh = await corral.WaitForWorkersAsync(2, Boot, gone: old);
        Assert.Empty(fresh.Intersect(old));
        // Every old worker gone (drained), then more calls: the new workers serve them.
        await WaitUntilAsync(() => old.All(pid => !ProcessTree.Children(corral.Pid).Contains(pid)), "the old workers to exit");
        var afterHup = Volatile.Read(ref ok);
        await WaitUntilAsync(() => Volatile.Read(ref ok) >= afterHup + 40, "40 calls after the old workers exited");
        await stop.CancelAsync();
        await Task.WhenAll(loops);

        Assert.True(failures.IsEmpty, $"{failures.Count} calls failed across the HUP ({ok} succeeded): {string.Join("; ", failures.Distinct().Take(5))}");
        // The same app again: its protocols are not logged again.
        Assert.Equal(1, corral.CountLines("Protocols at "));
    }

    [Theory]
    [InlineData(null, "h2 \\(HTTP/2 only, ALPN h2\\), from the app's Kestrel:EndpointDefaults:Protocols", true, false)]
    [InlineData("h1", "h1 \\(HTTP/1\\.1, ALPN http/1\\.1\\), from --http-protocols", false, true)]
    [InlineData("h2,h1", "h2,h1 \\(HTTP/2 and HTTP/1\\.1, by ALPN\\), from --http-protocols", true, true)]
    public async Task WithTlsAlpnOffersWhatTheAppOrTheSettingAsks(string? setting, string line, bool grpcWorks, bool http11Works)
    {
        var app = await GrpcApps.ServiceAsync();
        var (cert, certPem, keyPem) = SelfSigned();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", "--certfile", certPem, "--keyfile", keyPem,
            .. setting is null ? Array.Empty<string>() : ["--http-protocols", setting], app]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);
        Assert.Equal(1, corral.CountLines($@"Protocols at https://127\.0\.0\.1:{port}: {line}$"));

        using var channel = GrpcChannel.ForAddress($"https://127.0.0.1:{port}", new GrpcChannelOptions { HttpHandler = Trusting(cert) });
        var client = new Greeter.GreeterClient(channel);
        if (grpcWorks)
        {
            for (var i = 0; i < 20; i++)
            {
                Assert.Equal($"Hello tls {i}", (await client.SayHelloAsync(new HelloRequest { Name = $"tls {i}" }, deadline: DateTime.UtcNow.AddSeconds(20))).Message);
            }
        }
        else
        {
            await Assert.ThrowsAsync<RpcException>(async () => await client.SayHelloAsync(new HelloRequest { Name = "tls" }, deadline: DateTime.UtcNow.AddSeconds(20)));
        }

        using var http11 = new HttpClient(Trusting(cert)) { DefaultRequestVersion = HttpVersion.Version11, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact, Timeout = TimeSpan.FromSeconds(20) };
        if (http11Works)
        {
            using var response = await http11.GetAsync($"https://127.0.0.1:{port}/");
            Assert.Equal((HttpStatusCode.OK, HttpVersion.Version11), (response.StatusCode, response.Version));
            Assert.StartsWith(TemplateRootText, await response.Content.ReadAsStringAsync());
        }
        else
        {
            // ALPN offers h2 only: an HTTP/1.1 client gets no HTTP/1.1 answer.
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => http11.GetAsync($"https://127.0.0.1:{port}/"));
        }
    }

    [Fact]
    public async Task HttpProtocolsH1WinsOverTheAppsHttp2()
    {
        var app = await GrpcApps.ServiceAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", "--http-protocols", "h1", app]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);
        Assert.Equal(1, corral.CountLines($@"Protocols at http://127\.0\.0\.1:{port}: h1 \(HTTP/1\.1\), from --http-protocols$"));

        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new Greeter.GreeterClient(channel).SayHelloAsync(new HelloRequest { Name = "h1" }, deadline: DateTime.UtcNow.AddSeconds(20)));
        Assert.Contains("HTTP_1_1_REQUIRED", e.Status.ToString());
        var (status, body) = await Http.GetAsync(port, "/");
        Assert.Equal(200, status);
        Assert.StartsWith(TemplateRootText, body);
        var curl = await CurlAsync("--http1.1", $"http://127.0.0.1:{port}/");
        Assert.StartsWith("1.1 200 ", curl);
    }

    [Fact]
    public async Task TheWarmUpSpeaksHttp11ToAnHttp2OnlyApp()
    {
        // The warm-up's in-memory listener stays HTTP/1.1 (its requests are HTTP/1.1 GETs), whatever the app's listeners speak.
        var app = await GrpcApps.ServiceAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", "--warmup-requests", "3", app]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);
        Assert.Equal(2, corral.CountLines("Warmed up: 3 requests to / in"));
        Assert.Equal(0, corral.CountLines("Warm-up request GET|Warm-up stopped"));
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        Assert.Equal("Hello warm", (await new Greeter.GreeterClient(channel).SayHelloAsync(new HelloRequest { Name = "warm" }, deadline: DateTime.UtcNow.AddSeconds(20))).Message);
        Assert.StartsWith("2 200", await CurlAsync("--http2-prior-knowledge", $"http://127.0.0.1:{port}/"));
    }

    /// <summary>The app's protocols from code (ConfigureEndpointDefaults) and from its configured endpoints (Kestrel:Endpoints:*:Protocols), not only from the endpoint defaults.</summary>
    [Theory]
    [InlineData("TESTAPP_PROTOCOLS=Http2", "the app's ConfigureEndpointDefaults")]
    [InlineData("Kestrel__Endpoints__Own__Url=http://127.0.0.1:19151;Kestrel__Endpoints__Own__Protocols=Http2", "the app's endpoint \\(http://127\\.0\\.0\\.1:19151\\)")]
    public async Task TheAppsProtocolsFromCodeAndFromItsEndpointsAreHonoured(string env, string source)
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp],
            env.Split(';').Select(kv => kv.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]));
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        Assert.Equal(1, corral.CountLines($@"Protocols at http://127\.0\.0\.1:{port}: h2 \(HTTP/2 without TLS.*\), from {source}$"));
        using var h2c = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact, Timeout = TimeSpan.FromSeconds(20) };
        using var response = await h2c.GetAsync($"http://127.0.0.1:{port}/");
        Assert.Equal((HttpStatusCode.OK, HttpVersion.Version20, "Hello World!"), (response.StatusCode, response.Version, await response.Content.ReadAsStringAsync()));
        Assert.Equal(400, (await Http.GetAsync(port, "/")).Status);
    }

    private static async Task<int[]> PortsAsync(CorralProcess corral, int count)
    {
        var ports = new int[count];
        for (var i = 0; i < count; i++)
        {
            var m = await corral.WaitForLineAsync(@"Listening at: http://127\.0\.0\.1:(\d+) ", Boot, occurrence: i + 1);
            ports[i] = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        return ports;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("waited 60 s for " + what);
            }
            await Task.Delay(50);
        }
    }

    /// <summary>curl's "HTTP_VERSION STATUS BODY" for one request (curl is what users try first).</summary>
    private static async Task<string> CurlAsync(string version, string url)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-s", "-m", "10", version, "-w", "%{http_version} %{http_code} ", "-o", "/dev/null", url })
        {
            psi.ArgumentList.Add(a);
        }
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await p.WaitForExitAsync(cts.Token);
        return output;
    }

    /// <summary>A self-signed certificate for 127.0.0.1, written as PEM files.</summary>
    private (X509Certificate2 Cert, string CertPem, string KeyPem) SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        File.WriteAllText(_dir["grpc-cert.pem"], cert.ExportCertificatePem());
        File.WriteAllText(_dir["grpc-key.pem"], key.ExportPkcs8PrivateKeyPem());
        return (cert, _dir["grpc-cert.pem"], _dir["grpc-key.pem"]);
    }

    /// <summary>A handler that trusts exactly <paramref name="cert"/>.</summary>
    private static SocketsHttpHandler Trusting(X509Certificate2 cert) => new()
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && presented.GetCertHashString() == cert.GetCertHashString() },
    };
}
