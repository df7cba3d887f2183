using Corral.IntegrationTests.Infrastructure;
using SeedApp.Tests;

namespace Corral.IntegrationTests;

/// <summary>
/// Native AOT apps run no startup hooks: they link Corral.Agent in (docs/deployment.md, "Native AOT
/// apps"). SeedApp published that way boots in a few milliseconds of CPU, which is what makes
/// frequent reloads and recycling cheap (bench/results/zero-downtime.md).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NativeAotTests
{
    [Fact]
    public async Task ANativeAotAppServesOnCorralsSocketReloadsAndRecyclesWithoutErrors()
    {
        var exe = await TestApps.SeedAppNativeAotAsync();
        Assert.False(File.Exists(exe + ".dll"), "a Native AOT app has no IL beside it");
        using var redis = RedisServer.Start();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", "--max-requests", "50",
            "-e", "ASPNETCORE_ENVIRONMENT=Production", "-e", "Redis__Host=127.0.0.1", "-e", $"Redis__Port={redis.Port}", exe]);
        var port = await corral.PortAsync();
        var first = await corral.WaitForWorkersAsync(2, TimeSpan.FromSeconds(30));
        foreach (var pid in first)
        {
            Assert.Equal(exe, File.ResolveLinkTarget($"/proc/{pid}/exe", returnFinalTarget: false)?.FullName);
        }

        Assert.Equal("Hello from seed-app!", (await Http.GetAsync(port, "/")).Body);
        corral.Signal(ProcessTree.SIGHUP);
        await corral.WaitForWorkersAsync(2, TimeSpan.FromSeconds(30), gone: first);

        // 200 requests over --max-requests 50: recycles on the way, every request answered.
        var visits = new List<string>();
        for (var i = 0; i < 200; i++)
        {
            var r = await Http.GetAsync(port, "/visits");
            Assert.Equal(200, r.Status);
            visits.Add(r.Body.Trim());
        }
        Assert.Equal(Enumerable.Range(1, 200).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), visits);
        Assert.True(corral.CountLines("reached --max-requests") >= 2, corral.Output);

        corral.Signal(ProcessTree.SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.DoesNotContain(corral.Lines, l => l.Contains("[ERROR]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnExecutableWithoutTheAgentFailsToBootSayingSo()
    {
        // What a Native AOT app that does not link the agent looks like to the master: a process that never speaks.
        var dir = Directory.CreateTempSubdirectory("corral-noagent-").FullName;
        var app = Path.Combine(dir, "NoAgent");
        await File.WriteAllTextAsync(app, "#!/bin/sh\necho 'listening on my own port' >&2\nexit 1\n");
        File.SetUnixFileMode(app, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", app]);
        Assert.Equal(3, await corral.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        var reason = Assert.Single(corral.Lines, l => l.Contains("Reason: Worker failed to boot.", StringComparison.Ordinal));
        Assert.Contains("exit code 1, and corral's agent never started in it (a Native AOT app must link it in", reason);
    }
}
