using Corral.IntegrationTests.Infrastructure;
using SeedApp.Tests;

namespace Corral.IntegrationTests;

/// <summary>Issue #4's acceptance under corral: SeedApp with a real redis-server, and without one.</summary>
public sealed class SeedAppTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task TheCounterIsSharedByAllWorkers()
    {
        var apps = await TestApps.GetAsync();
        using var redis = RedisServer.Start();
        using var corral = CorralProcess.Start(["-w", "3", "-b", "127.0.0.1:0", "--log-level", "debug",
            "-e", "ASPNETCORE_ENVIRONMENT=Production", "-e", "Redis__Host=127.0.0.1", "-e", $"Redis__Port={redis.Port}", apps.SeedApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(3, Boot);

        var bodies = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => Http.GetAsync(port, "/visits")));
        Assert.All(bodies, b => Assert.Equal(200, b.Status));
        Assert.Equal(Enumerable.Range(1, 30).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(),
            bodies.Select(b => b.Body.Trim()).Order());
        Assert.Equal("31", (await Http.GetAsync(port, "/visits")).Body.Trim());
        Assert.Equal("31", redis.Cli("GET", "seed-app:visits").Trim());
    }

    [Fact]
    public async Task ProductionWithoutRedisExits3WithOneClearLine()
    {
        var apps = await TestApps.GetAsync();
        var nobody = FreePort.Next();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "-e", "ASPNETCORE_ENVIRONMENT=Production",
            "-e", "Redis__Host=127.0.0.1", "-e", $"Redis__Port={nobody}", "-e", "Redis__Password=s3cret-pw", apps.SeedApp]);
        Assert.Equal(3, await corral.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        var reason = Assert.Single(corral.Lines, l => l.Contains("Reason: Worker failed to boot.", StringComparison.Ordinal));
        Assert.Contains($"127.0.0.1:{nobody}", reason);
        Assert.DoesNotContain("s3cret-pw", corral.Output);
    }

    [Fact]
    public async Task AWrongRedisPasswordSaysAuthenticationFailed()
    {
        var apps = await TestApps.GetAsync();
        using var redis = RedisServer.Start(password: "right-one");
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-e", "ASPNETCORE_ENVIRONMENT=Production",
            "-e", "Redis__Host=127.0.0.1", "-e", $"Redis__Port={redis.Port}", "-e", "Redis__Password=wrong-one", apps.SeedApp]);
        Assert.Equal(3, await corral.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        var reason = Assert.Single(corral.Lines, l => l.Contains("Reason: Worker failed to boot.", StringComparison.Ordinal));
        Assert.Contains("authentication", reason, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("wrong-one", corral.Output);
    }

    [Fact]
    public async Task DevelopmentWithoutRedisServesFromMemory()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "--log-level", "debug", "-e", "ASPNETCORE_ENVIRONMENT=Development", apps.SeedApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        Assert.Equal("1", (await Http.GetAsync(port, "/visits")).Body.Trim());
        Assert.Equal("2", (await Http.GetAsync(port, "/visits")).Body.Trim());
    }
}
