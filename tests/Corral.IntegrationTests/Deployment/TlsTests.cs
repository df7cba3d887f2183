using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests.Deployment;

/// <summary>TLS served by corral's workers: --certfile/--keyfile, HTTP/2 by ALPN, --ca-certs for client certificates.</summary>
public sealed class TlsTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A CA, a server certificate for 127.0.0.1 it issued, written as PEM files.</summary>
    private sealed class Pki
    {
        public required X509Certificate2 Ca { get; init; }
        public required ECDsa CaKey { get; init; }
        public required X509Certificate2 Server { get; init; }
        public required string CaPem { get; init; }
        public required string CertPem { get; init; }
        public required string KeyPem { get; init; }
    }

    private Pki MakePki(string name)
    {
        var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest($"CN=Corral test CA {name}", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-2), DateTimeOffset.UtcNow.AddDays(60));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        serverRequest.CertificateExtensions.Add(san.Build());
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var server = serverRequest.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), RandomNumberGenerator.GetBytes(8));

        var pki = new Pki
        {
            Ca = ca,
            CaKey = caKey,
            Server = server,
            CaPem = _dir[$"{name}-ca.pem"],
            CertPem = _dir[$"{name}-cert.pem"],
            KeyPem = _dir[$"{name}-key.pem"],
        };
        File.WriteAllText(pki.CaPem, ca.ExportCertificatePem());
        File.WriteAllText(pki.CertPem, server.ExportCertificatePem() + "\n" + ca.ExportCertificatePem());
        File.WriteAllText(pki.KeyPem, serverKey.ExportPkcs8PrivateKeyPem());
        return pki;
    }

    private static X509Certificate2 ClientCertificate(Pki issuer)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=corral test client", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var cert = request.Create(issuer.Ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), RandomNumberGenerator.GetBytes(8));
        // Through PKCS#12, so that the key is usable by the TLS stack on every platform.
        using var withKey = cert.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    private static HttpClient Client(Pki pki, X509Certificate2? clientCert = null, bool http2 = true)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                // Trust exactly the test's CA.
                RemoteCertificateValidationCallback = (_, cert, _, _) =>
                {
                    if (cert is null)
                    {
                        return false;
                    }
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(pki.Ca);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(new X509Certificate2(cert));
                },
                ClientCertificates = clientCert is null ? null : new X509CertificateCollection { clientCert },
            },
        };
        return new HttpClient(handler)
        {
            Timeout = TimeSpan.FromSeconds(20),
            DefaultRequestVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    [Fact]
    public async Task HttpsWithHttp2OfferedByAlpn()
    {
        var apps = await TestApps.GetAsync();
        var pki = MakePki("h2");
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug",
            "--certfile", pki.CertPem, "--keyfile", pki.KeyPem, apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);
        // It serves HTTPS and says so (Gunicorn's line: "Listening at: https://...").
        Assert.Equal(1, corral.CountLines($@"Listening at: https://127\.0\.0\.1:{port} \(\d+\)$"));
        Assert.Equal(0, corral.CountLines("Listening at: http://"));

        using var h2 = Client(pki);
        using var response = await h2.GetAsync($"https://127.0.0.1:{port}/client");
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("127.0.0.1 https HTTP/2", await response.Content.ReadAsStringAsync());
        // Many streams on one connection.
        var bodies = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => h2.GetStringAsync($"https://127.0.0.1:{port}/")));
        Assert.All(bodies, b => Assert.Equal("Hello World!", b));

        using var h1 = Client(pki, http2: false);
        using var response11 = await h1.GetAsync($"https://127.0.0.1:{port}/client");
        Assert.Equal(HttpVersion.Version11, response11.Version);
        Assert.Equal("127.0.0.1 https HTTP/1.1", await response11.Content.ReadAsStringAsync());

        // Plain HTTP on a TLS listener is not served.
        using var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => plain.GetAsync($"http://127.0.0.1:{port}/"));
    }

    [Fact]
    public async Task CaCertsRequiresAClientCertificateFromThoseCas()
    {
        var apps = await TestApps.GetAsync();
        var pki = MakePki("mtls");
        var stranger = MakePki("stranger");
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "--log-level", "debug",
            "--certfile", pki.CertPem, "--keyfile", pki.KeyPem, "--ca-certs", pki.CaPem, apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        var url = $"https://127.0.0.1:{port}/client";

        using var good = ClientCertificate(pki);
        using var withCert = Client(pki, good);
        Assert.Equal("127.0.0.1 https HTTP/2", await withCert.GetStringAsync(url));

        using var noCert = Client(pki, http2: false);
        await AssertRefused(noCert, url);

        using var foreign = ClientCertificate(stranger);
        using var withForeign = Client(pki, foreign, http2: false);
        await AssertRefused(withForeign, url);
    }

    private static async Task AssertRefused(HttpClient client, string url)
    {
        // TLS 1.3 may finish the client's side of the handshake before the server refuses: the refusal
        // then shows as the connection closing on the request.
        var e = await Assert.ThrowsAnyAsync<Exception>(() => client.GetAsync(url));
        Assert.True(e is HttpRequestException or AuthenticationException or IOException, e.ToString());
    }

    [Fact]
    public async Task AMissingOrMismatchedCertificateIsOneLineAndExit2BeforeAnythingStarts()
    {
        var pki = MakePki("bad");
        var other = MakePki("other");
        var missing = _dir["missing.pem"];

        foreach (var (args, expected) in new (string[], string)[]
        {
            (["--certfile", missing, "--keyfile", pki.KeyPem], "--certfile"),
            (["--certfile", pki.CertPem, "--keyfile", missing], "--keyfile"),
            (["--certfile", pki.CertPem, "--keyfile", other.KeyPem], "--certfile"),
            (["--certfile", pki.CertPem], "--certfile"), // no key in the certificate file
            (["--certfile", pki.CertPem, "--keyfile", pki.KeyPem, "--ca-certs", pki.KeyPem], "--ca-certs"),
            (["--keyfile", pki.KeyPem], "--certfile"),
        })
        {
            var pidFile = _dir["bad.pid"];
            using var corral = CorralProcess.Start([.. args, "-b", "127.0.0.1:0", "-p", pidFile, "app.dll"]);
            Assert.Equal(2, await corral.WaitForExitAsync(TimeSpan.FromSeconds(10)));
            var line = Assert.Single(corral.Lines, l => l.Length > 0);
            Assert.StartsWith("corral: error: ", line);
            Assert.Contains(expected, line);
            Assert.False(File.Exists(pidFile), "corral started before checking its certificate");
        }
    }
}
