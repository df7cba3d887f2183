using System.Net.Sockets;
using Corral.Agent.Contract;
using Corral.Listeners;
using Corral.Processes;

namespace Corral.Tests;

/// <summary>What each worker is told, from the master's settings.</summary>
public sealed class AgentOptionsBuilderTests : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    private AgentOptions Build(params string[] argv) =>
        AgentOptionsBuilder.Build(Settings.Ok([.. argv, "App.dll"]), [new Listener(_socket, "http://127.0.0.1:8000", null)], 7, "corral-accept-x", null);

    [Theory]
    [InlineData(new[] { "-k", "async" }, "corral-accept-x")]
    [InlineData(new[] { "-k", "async", "--accept-policy", "kernel" }, null)]
    [InlineData(new[] { "-k", "gthread", "--threads", "4" }, null)]
    [InlineData(new[] { "-k", "sync" }, null)]
    public void OnlyAsyncWorkersUnderPackAreToldTheLeadersName(string[] argv, string? leader)
    {
        var options = Build(argv);
        Assert.Equal(leader, options.AcceptLeader);
        Assert.Equal(argv[1], JsonNameOf(options.WorkerClass));
    }

    [Theory]
    [InlineData(new[] { "-w", "2", "--pack-leader-connections", "16" }, 16)]
    [InlineData(new[] { "-w", "2" }, 0)]
    [InlineData(new[] { "-w", "1", "--pack-leader-connections", "16" }, 0)] // no other worker to lead
    public void TheLeadersConnectionCapIsPassedOnWhenThereIsAnotherWorkerToLead(string[] argv, int cap) =>
        Assert.Equal(cap, Build(argv).PackLeaderConnections);

    [Fact]
    public void TheWorkerGetsTheListenersTheControlFdAndTheProtocol()
    {
        var options = Build();
        Assert.Equal(AgentOptions.CurrentProtocol, options.Protocol);
        Assert.Equal([(int)_socket.Handle], options.ListenFds);
        Assert.Equal(["http://127.0.0.1:8000"], options.ListenNames);
        Assert.Equal(7, options.ControlFd);
    }

    [Theory]
    [InlineData(new string[0], null)]
    [InlineData(new[] { "--http-protocols", "h2" }, "h2")]
    [InlineData(new[] { "--http-protocols", "h1,h2" }, "h1,h2")]
    public void HttpProtocolsIsPassedAsGivenAndUnsetLeavesTheAppsChoice(string[] argv, string? expected) =>
        Assert.Equal(expected, Build(argv).HttpProtocols);

    [Fact]
    public void MaxRequestsIsJitteredPerWorkerWithinTheJitter()
    {
        var seen = Enumerable.Range(0, 200).Select(_ => Build("--max-requests", "100", "--max-requests-jitter", "5").MaxRequests).ToHashSet();
        Assert.All(seen, n => Assert.InRange(n, 100, 105));
        Assert.True(seen.Count > 1, "the jitter is drawn for each worker");
        Assert.Equal(100, Build("--max-requests", "100").MaxRequests);
        Assert.Equal(0, Build("--max-requests-jitter", "5").MaxRequests);
    }

    [Fact]
    public void FilesAreFullPathsAndTheWarmUpGetsHalfTheTimeout()
    {
        var options = Build("--access-logfile", "access.log", "-t", "40", "--warmup-requests", "3");
        Assert.Equal(Path.GetFullPath("access.log"), options.Logs.AccessLogFile);
        Assert.Equal(20, options.Warmup.Timeout);
        Assert.Equal(3, options.Warmup.Requests);
        Assert.Equal("-", Build("--access-logfile", "-").Logs.AccessLogFile);
    }

    [Fact]
    public void TlsAndStatsdAreToldOnlyWhenSet()
    {
        var plain = Build();
        Assert.Null(plain.Tls);
        Assert.Null(plain.Statsd);
        using var dir = new TempDir();
        using var key = System.Security.Cryptography.ECDsa.Create();
        using var selfSigned = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=localhost", key, System.Security.Cryptography.HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var cert = dir.File("cert.pem", selfSigned.ExportCertificatePem() + "\n" + key.ExportPkcs8PrivateKeyPem());
        var options = Build("--certfile", cert, "--statsd-host", "127.0.0.1:9125", "--statsd-prefix", "app");
        Assert.Equal(cert, options.Tls!.CertFile);
        Assert.Null(options.Tls.KeyFile);
        Assert.Equal("127.0.0.1:9125", options.Statsd!.Host);
        Assert.Equal("app.", options.Statsd.Prefix);
    }

    private static string JsonNameOf(WorkerClass c) => System.Text.Json.JsonSerializer.Serialize(c).Trim('"');

    public void Dispose() => _socket.Dispose();
}
