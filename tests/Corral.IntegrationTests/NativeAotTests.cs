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

        // Requests over --max-requests 50 until two workers have been recycled (at least 200), every
        // request answered. A recycled worker serves on until its successor is ready, so how many
        // requests two recycles take depends on how fast the machine boots one.
        var visits = new List<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((visits.Count < 200 || corral.CountLines("reached --max-requests") < 2) && DateTime.UtcNow < deadline)
        {
            var r = await Http.GetAsync(port, "/visits");
            Assert.Equal(200, r.Status);
            visits.Add(r.Body.Trim());
        }
        Assert.Equal(Enumerable.Range(1, visits.Count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), visits);
        Assert.True(corral.CountLines("reached --max-requests") >= 2, corral.Output);

        corral.Signal(ProcessTree.SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        var errors = corral.Lines.Where(l => l.Contains("[ERROR]", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task AnAppThatCarriesItsOwnAgentRunsItUnderTheJit()
    {
        // The runtime would refuse corral's copy as a startup hook beside the app's own ("manifest
        // definition does not match"), so corral hooks the app's copy.
        var dll = await TestApps.OwnAgentAppAsync();
        var own = Path.Combine(Path.GetDirectoryName(dll)!, "Corral.Agent.dll");
        Assert.True(File.Exists(own), own);
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "--log-level", "debug", dll]);
        var port = await corral.PortAsync();
        var worker = Assert.Single(await corral.WaitForWorkersAsync(1, TimeSpan.FromSeconds(30)));

        Assert.Equal("own agent", (await Http.GetAsync(port, "/")).Body);
        var agents = File.ReadAllLines($"/proc/{worker}/maps").Where(l => l.EndsWith("Corral.Agent.dll", StringComparison.Ordinal))
            .Select(l => l[l.IndexOf('/', StringComparison.Ordinal)..]).Distinct().ToList();
        Assert.Equal([own], agents);
    }

    [Fact]
    public async Task AnIlBuildWithStartupHooksSwitchedOffIsRefusedBeforeAnyWorkerStarts()
    {
        // `dotnet build -p:PublishAot=true` leaves IL that runs on the JIT but ignores startup hooks.
        var dll = await TestApps.SeedAppAotBuildAsync();
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", dll]);
        Assert.Equal(2, await corral.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("SeedApp.runtimeconfig.json switches startup hooks off (a trimmed or PublishAot build), so corral's agent cannot load", corral.Output);
        Assert.DoesNotContain("Booting worker", corral.Output);
    }

    [Fact]
    public async Task AnExecutableWithoutTheAgentFailsToBootSayingSo()
    {
        // What a Native AOT app that does not link the agent looks like to the master: a process that never speaks.
        var dir = Scratch.NewDirectory("corral-noagent-");
        var app = Path.Combine(dir, "NoAgent");
        await File.WriteAllTextAsync(app, "#!/bin/sh\necho 'listening on my own port' >&2\nexit 1\n");
        File.SetUnixFileMode(app, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", app]);
        Assert.Equal(3, await corral.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        var reason = Assert.Single(corral.Lines, l => l.Contains("Reason: Worker failed to boot.", StringComparison.Ordinal));
        Assert.Contains("exit code 1, and corral's agent never started in it (a Native AOT app must link it in", reason);
    }
}
