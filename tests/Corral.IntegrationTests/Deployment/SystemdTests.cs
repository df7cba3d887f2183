using System.Diagnostics;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests.Deployment;

/// <summary>deploy/systemd/corral.socket's socket, handed to corral as systemd does (LISTEN_FDS).</summary>
public sealed class SystemdTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private sealed class Activated(ProcessStartInfo psi) : ExternalProcess(psi);

    [Fact]
    public async Task TheSocketUnitsSocketIsServedByCorralThroughLISTEN_FDS()
    {
        var unit = File.ReadAllLines(Path.Combine(TestApps.RepoRoot, "deploy", "systemd", "corral.socket"));
        var listen = Assert.Single(unit, l => l.StartsWith("ListenStream=", StringComparison.Ordinal));
        Assert.Equal("ListenStream=/run/corral/corral.sock", listen);
        var service = File.ReadAllText(Path.Combine(TestApps.RepoRoot, "deploy", "systemd", "corral.service"));
        Assert.Contains("Requires=corral.socket", service, StringComparison.Ordinal);

        var apps = await TestApps.GetAsync();
        var socket = _dir["corral.sock"];
        // systemd-socket-activate binds the socket and execs corral with LISTEN_FDS=1, LISTEN_PID=its pid.
        var psi = new ProcessStartInfo(ExternalProcess.Which("systemd-socket-activate"));
        foreach (var a in new[] { "-l", socket, "dotnet", TestApps.CorralDll, "-b", "127.0.0.1:1", "--log-level", "debug", apps.TestApp })
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment.Remove("CORRAL_CMD_ARGS");
        using var corral = new Activated(psi);

        using var client = Clients.OverUnixSocket(socket);
        string? body = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (body is null)
        {
            Assert.False(corral.HasExited, corral.Output);
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "http://localhost/client");
                request.Headers.Add("X-Forwarded-For", "203.0.113.9");
                using var response = await client.SendAsync(request);
                body = await response.Content.ReadAsStringAsync();
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
        // Served on the activated socket (not on -b 127.0.0.1:1), and a unix peer's X-Forwarded-For is believed.
        Assert.Equal("203.0.113.9 http HTTP/1.1", body);
        Assert.Contains("Listening at: unix:", corral.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Listening at: http://127.0.0.1:1 ", corral.Output, StringComparison.Ordinal);
    }
}
