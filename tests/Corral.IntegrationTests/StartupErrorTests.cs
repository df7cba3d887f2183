using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests;

/// <summary>
/// Bad input that must stop corral with one clear line before any worker starts (exit 2 for bad
/// usage or configuration), and that --check-config catches too.
/// </summary>
public sealed class StartupErrorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-startup-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Runs corral to its exit (at most 20 s): the exit code and every line it printed.</summary>
    private static async Task<(int Exit, IReadOnlyList<string> Lines)> RunAsync(params string[] args)
    {
        using var corral = CorralProcess.Start(args);
        var exit = await corral.WaitForExitAsync(TimeSpan.FromSeconds(20));
        return (exit, corral.Lines);
    }

    [Fact]
    public async Task AWorkerServiceIsNotAWebAppAndIsRefusedBeforeAnyWorkerStarts()
    {
        var apps = await TestApps.GetAsync();
        var (exit, lines) = await RunAsync("-b", "127.0.0.1:0", "-w", "2", "--log-level", "debug", apps.WorkerDll);
        Assert.Equal(2, exit);
        var error = Assert.Single(lines, l => l.Contains("[ERROR]", StringComparison.Ordinal));
        Assert.Contains("not an ASP.NET Core app", error);
        Assert.Contains("WorkerService.runtimeconfig.json names no Microsoft.AspNetCore.App framework", error);
        Assert.DoesNotContain(lines, l => l.Contains("Booting worker", StringComparison.Ordinal) || l.Contains("Listening at", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Exception", StringComparison.Ordinal));

        var (checkExit, checkLines) = await RunAsync("--check-config", apps.WorkerDll);
        Assert.Equal(2, checkExit);
        var line = Assert.Single(checkLines);
        Assert.StartsWith("corral: error: APP ", line);
        Assert.Contains("not an ASP.NET Core app", line);
    }
}
