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
    private static Task<(int Exit, IReadOnlyList<string> Lines)> RunAsync(params string[] args) => RunAsync(null, args);

    private static async Task<(int Exit, IReadOnlyList<string> Lines)> RunAsync(IDictionary<string, string>? env, params string[] args)
    {
        using var corral = CorralProcess.Start(args, env);
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

    [Theory]
    // A worker used to fail to open it: a stack trace per worker, exit 3 blaming the app; --check-config passed.
    [InlineData("access-log", "--access-logfile (accesslog)")]
    [InlineData("error-log", "--error-logfile (errorlog)")]
    [InlineData("pid-file", "--pid (pidfile)")]
    // Paths too long for a unix socket: the master used to die of an ArgumentOutOfRangeException (exit 134).
    [InlineData("long-unix-bind", "--bind (bind)")]
    [InlineData("long-control-socket", "--pid (pidfile)")]
    public async Task AFileSettingCorralCannotUseIsOneLineNamingItAndExit2(string kind, string setting)
    {
        var apps = await TestApps.GetAsync();
        var missing = Path.Combine(_dir, "missing");
        var deep = Path.Combine(_dir, new string('d', 100));
        Directory.CreateDirectory(deep);
        string[] args = kind switch
        {
            "access-log" => ["--access-logfile", Path.Combine(missing, "access.log")],
            "error-log" => ["--error-logfile", Path.Combine(missing, "error.log")],
            "pid-file" => ["-p", Path.Combine(missing, "corral.pid")],
            "long-unix-bind" => ["-b", "unix:" + Path.Combine(deep, "app.sock")],
            _ => ["-p", Path.Combine(deep, "corral.pid")],
        };
        foreach (var check in new[] { false, true })
        {
            var (exit, lines) = await RunAsync([.. check ? ["--check-config"] : Array.Empty<string>(), "-b", "127.0.0.1:0", .. args, apps.TestApp]);
            Assert.True(exit == 2, $"exit {exit}{(check ? " with --check-config" : "")}:\n{string.Join('\n', lines)}");
            var line = Assert.Single(lines);
            Assert.StartsWith("corral: error: " + setting, line);
            Assert.EndsWith("(from the command line)", line);
        }
        Assert.False(Directory.Exists(missing));
        Assert.Empty(Directory.GetFileSystemEntries(deep));
    }

    [Fact]
    public async Task AReloadToAnAccessLogCorralCannotOpenKeepsTheRunningWorkers()
    {
        var apps = await TestApps.GetAsync();
        var config = Path.Combine(_dir, "corral.json");
        await File.WriteAllTextAsync(config, $$"""{ "accesslog": {{System.Text.Json.JsonSerializer.Serialize(Path.Combine(_dir, "access.log"))}} }""");
        using var corral = CorralProcess.Start(["-c", config, "-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(1, TimeSpan.FromSeconds(30));

        await File.WriteAllTextAsync(config, $$"""{ "accesslog": {{System.Text.Json.JsonSerializer.Serialize(Path.Combine(_dir, "gone", "access.log"))}} }""");
        corral.Signal(ProcessTree.SIGHUP);
        await corral.WaitForLineAsync(@"Reload: --access-logfile \(accesslog\): .* no such directory: .*gone .*\(from the config file ", TimeSpan.FromSeconds(10));
        await corral.WaitForLineAsync("Reload aborted", TimeSpan.FromSeconds(10));
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        Assert.Equal(workers, ProcessTree.Children(corral.Pid));
        Assert.DoesNotContain(corral.Lines, l => l.Contains("Exception", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AnAddressThatIsNotAnAddressIsBadUsageNamingWhereItCameFrom(bool fromCmdArgs)
    {
        // It used to be taken for a host name that does not resolve: exit 1 at bind time, and --check-config passed.
        var apps = await TestApps.GetAsync();
        var env = fromCmdArgs ? new Dictionary<string, string> { ["CORRAL_CMD_ARGS"] = "-b 300.1.1.1:80" } : null;
        string[] bind = fromCmdArgs ? [] : ["-b", "300.1.1.1:80"];
        foreach (var check in new[] { false, true })
        {
            var (exit, lines) = await RunAsync(env, [.. check ? ["--check-config"] : Array.Empty<string>(), .. bind, apps.TestApp]);
            Assert.True(exit == 2, $"exit {exit}{(check ? " with --check-config" : "")}:\n{string.Join('\n', lines)}");
            var line = Assert.Single(lines);
            Assert.StartsWith("corral: error: --bind (bind): '300.1.1.1:80' is not valid: '300.1.1.1' is not an IPv4 address", line);
            Assert.EndsWith(fromCmdArgs ? "(from CORRAL_CMD_ARGS)" : "(from the command line)", line);
        }
    }
}
