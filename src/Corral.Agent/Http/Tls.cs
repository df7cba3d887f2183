using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.Agent.Contract;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Corral.Agent.Http;

/// <summary>
/// TLS served by Kestrel itself (--certfile, --keyfile, --ca-certs): the certificate and key from PEM
/// files, the listener's protocols offered by ALPN (HTTP/2 and HTTP/1.1 unless the app or
/// --http-protocols says otherwise), and with --ca-certs a client certificate required
/// and validated against those CAs only.
/// </summary>
public static class Tls
{
    /// <summary>
    /// Loads the certificate (with its key: from <paramref name="keyFile"/>, or from the certificate
    /// file when null). Throws <see cref="TlsException"/> with a one-line reason.
    /// </summary>
    public static X509Certificate2 LoadCertificate(string certFile, string? keyFile)
    {
        try
        {
            var cert = X509Certificate2.CreateFromPemFile(certFile, keyFile);
            if (!cert.HasPrivateKey)
            {
                cert.Dispose();
                throw new TlsException($"--certfile {certFile}: no private key (give --keyfile)");
            }
            return cert;
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            var files = keyFile is null ? $"--certfile {certFile}" : $"--certfile {certFile} / --keyfile {keyFile}";
            throw new TlsException($"{files}: cannot load a PEM certificate and key: {OneLine(e.Message)}");
        }
    }

    /// <summary>Loads the CA bundle of --ca-certs; throws <see cref="TlsException"/> if it holds no certificate.</summary>
    public static X509Certificate2Collection LoadCaCerts(string caFile)
    {
        var cas = new X509Certificate2Collection();
        try
        {
            cas.ImportFromPemFile(caFile);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new TlsException($"--ca-certs {caFile}: {OneLine(e.Message)}");
        }
        if (cas.Count == 0)
        {
            throw new TlsException($"--ca-certs {caFile}: no PEM certificate in it");
        }
        return cas;
    }

    /// <summary>Checks the files of the settings the way the worker will load them (the master does this before anything starts).</summary>
    public static void Check(string certFile, string? keyFile, string? caFile)
    {
        LoadCertificate(certFile, keyFile).Dispose();
        if (caFile is not null)
        {
            foreach (var ca in LoadCaCerts(caFile))
            {
                ca.Dispose();
            }
        }
    }

    /// <summary>True when <paramref name="clientCert"/> chains to one of <paramref name="cas"/> (no revocation check).</summary>
    public static bool ValidateClient(X509Certificate2 clientCert, X509Certificate2Collection cas)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(cas);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2")); // clientAuth
        return chain.Build(clientCert);
    }

    /// <summary>Sets up one Kestrel listener for TLS with these options' files.</summary>
    internal static Action<ListenOptions>? ForListeners(AgentOptions options)
    {
        if (options.Tls is not { } files)
        {
            return null;
        }
        var cert = LoadCertificate(files.CertFile, files.KeyFile);
        var cas = files.CaCerts is null ? null : LoadCaCerts(files.CaCerts);
        return listen =>
        {
            listen.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = cert,
                ClientCertificateMode = cas is null ? ClientCertificateMode.NoCertificate : ClientCertificateMode.RequireCertificate,
                ClientCertificateValidation = cas is null ? null : (clientCert, _, _) => ValidateClient(clientCert, cas),
            });
        };
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();
}

public sealed class TlsException(string message) : Exception(message);
