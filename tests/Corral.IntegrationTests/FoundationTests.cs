using System.Globalization;
using System.Security.Cryptography;
using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>Issue #2's acceptance, each point a test: real corral, real apps, real signals.</summary>
public sealed class FoundationTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    private static CorralProcess StartCorral(string app, params string[] args) =>
        CorralProcess.Start([.. args, "-b", "127.0.0.1:0", "--log-level", "debug", app]);

    [Fact]
    public async Task FreshWebAppAnswersHelloWorldFromTwoWorkersAndIsNotChanged()
    {
        var apps = await TestApps.GetAsync();
        var before = HashTree(apps.FreshWebDir);
        var outputBefore = HashTree(Path.GetDirectoryName(apps.FreshWebDll)!);

        using var corral = StartCorral(apps.FreshWebDll, "-w", "2", "-k", "sync", "--access-logfile", "-", "--access-logformat", "access pid=%(p)s status=%(s)s");
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);

        // sync workers take one connection at a time, so concurrent requests spread over both.
        var bodies = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Http.GetAsync(port, "/")));
        Assert.All(bodies, b => Assert.Equal((200, "Hello World!"), b));

        await corral.WaitForLineAsync("access pid=", TimeSpan.FromSeconds(5), occurrence: 40);
        var servedBy = corral.Lines.Where(l => l.StartsWith("access pid=<", StringComparison.Ordinal))
            .Select(l => int.Parse(l["access pid=<".Length..l.IndexOf('>')], CultureInfo.InvariantCulture)).ToHashSet();
        Assert.Equal(workers, servedBy);

        corral.Signal(SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(before, HashTree(apps.FreshWebDir));
        Assert.Equal(outputBefore, HashTree(Path.GetDirectoryName(apps.FreshWebDll)!));
    }

    [Fact]
    public async Task TtinAddsTtouRemovesAndAKilledWorkerIsReplaced()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-w", "2");
        await corral.PortAsync();
        var two = await corral.WaitForWorkersAsync(2, Boot);

        corral.Signal(SIGTTIN);
        var three = await corral.WaitForWorkersAsync(3, TimeSpan.FromSeconds(10));
        Assert.True(two.IsSubsetOf(three));

        corral.Signal(SIGTTOU);
        var back = await corral.WaitForWorkersAsync(2, TimeSpan.FromSeconds(5));
        Assert.Equal(2, back.Count);

        var victim = back.First();
        Kill(victim, SIGKILL);
        var replaced = await corral.WaitForWorkersAsync(2, TimeSpan.FromSeconds(5), gone: [victim]);
        Assert.DoesNotContain(victim, replaced);
        await corral.WaitForLineAsync($@"Worker \(pid:{victim}\) was sent SIGKILL", TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task HupReplacesEveryWorkerWhileALoopingClientSeesNoError()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-w", "2");
        var port = await corral.PortAsync();
        var old = await corral.WaitForWorkersAsync(2, Boot);

        HashSet<int> fresh;
        await using (var loop = new Http.Loop(port, "/pid"))
        {
            await Task.Delay(500);
            corral.Signal(SIGHUP);
            await corral.WaitForLineAsync("Hang up: Master", TimeSpan.FromSeconds(5));
            var deadline = DateTime.UtcNow + Boot;
            do
            {
                fresh = await corral.WaitForWorkersAsync(2, Boot);
            }
            while (fresh.Overlaps(old) && DateTime.UtcNow < deadline);
            await Task.Delay(500);
            Assert.Empty(loop.Failures);
            Assert.True(loop.Succeeded > 20, $"only {loop.Succeeded} requests succeeded");
        }
        Assert.False(fresh.Overlaps(old));
    }

    [Fact]
    public async Task TermStopsWithinTheGracefulTimeoutAndLeavesNoProcess()
    {
        var apps = await TestApps.GetAsync();
        var pidFile = Path.Combine(Path.GetTempPath(), $"corral-{Guid.NewGuid():N}.pid");
        using var corral = StartCorral(apps.TestApp, "-w", "2", "--graceful-timeout", "5", "-p", pidFile);
        await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);
        Assert.Equal(corral.Pid.ToString(CultureInfo.InvariantCulture), File.ReadAllText(pidFile).Trim());

        corral.Signal(SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(6)));
        Assert.All(workers, w => Assert.False(IsAlive(w), $"worker {w} outlived the master"));
        Assert.False(File.Exists(pidFile), "the pid file was left behind");
        Assert.Contains(corral.Lines, l => l.Contains("Shutting down: Master", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SyncRequestLongerThanTimeoutKillsAndReplacesTheWorker()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-k", "sync", "-t", "2", "-w", "1");
        var port = await corral.PortAsync();
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        var slow = Http.GetAsync(port, "/sleep?ms=5000");
        await corral.WaitForLineAsync($@"\[CRITICAL\] WORKER TIMEOUT \(pid:{worker}\)", TimeSpan.FromSeconds(6));
        // The request dies with its worker (a reset; once, on a loaded machine, only the client's timeout).
        await Assert.ThrowsAnyAsync<Exception>(() => slow);
        var replacement = (await corral.WaitForWorkersAsync(1, Boot, gone: [worker])).Single();
        Assert.NotEqual(worker, replacement);
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
    }

    [Fact]
    public async Task AppThatThrowsAtStartupExits3WithItsMessage()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", apps.TestApp],
            new Dictionary<string, string> { ["TESTAPP_THROW_AT_START"] = "database is on fire" });
        Assert.Equal(3, await corral.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains(corral.Lines, l => l.Contains("Worker failed to boot", StringComparison.Ordinal) && l.Contains("database is on fire", StringComparison.Ordinal));
        Assert.Empty(Children(corral.Pid));
    }

    [Fact]
    public async Task UnknownFlagExits2WithOneLine()
    {
        using var corral = CorralProcess.Start(["--no-such-flag", "app.dll"]);
        Assert.Equal(2, await corral.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        var line = Assert.Single(corral.Lines, l => l.Length > 0);
        Assert.Contains("--no-such-flag", line);
    }

    private static string HashTree(string dir)
    {
        using var sha = SHA256.Create();
        foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            if (file.Contains("/obj/", StringComparison.Ordinal) || file.Contains("/bin/", StringComparison.Ordinal))
            {
                continue;
            }
            var name = System.Text.Encoding.UTF8.GetBytes(Path.GetRelativePath(dir, file));
            sha.TransformBlock(name, 0, name.Length, null, 0);
            var bytes = File.ReadAllBytes(file);
            sha.TransformBlock(bytes, 0, bytes.Length, null, 0);
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexString(sha.Hash!);
    }
}
