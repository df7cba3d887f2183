using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>Reloads and recycling that lose nothing, seen by strict keep-alive clients (like wrk, which never retries).</summary>
public sealed class ZeroDowntimeTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(0)]
    [InlineData(50)] // new workers hold their accepts while they warm up
    public async Task KeepAliveClientsSeeNoErrorAcrossHupsAndRecycles(int warmupRequests)
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", "--max-requests", "3000", "--max-requests-jitter", "500",
            "--warmup-requests", warmupRequests.ToString(System.Globalization.CultureInfo.InvariantCulture), apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);

        var clients = Enumerable.Range(0, 8).Select(_ => new KeepAliveClient()).ToList();
        using var stop = new CancellationTokenSource();
        var running = clients.Select(c => c.RunAsync(port, "/", stop.Token)).ToList();
        var workers = await corral.WaitForWorkersAsync(2, Boot);
        for (var i = 0; i < 3; i++)
        {
            await Task.Delay(1000);
            corral.Signal(SIGHUP);
            // The next HUP once this one is done: two new workers ready, the old ones gone.
            var deadline = DateTime.UtcNow + Boot;
            HashSet<int> now;
            do
            {
                now = await corral.WaitForWorkersAsync(2, Boot);
            }
            while (now.Overlaps(workers) && DateTime.UtcNow < deadline);
            workers = now;
        }
        await Task.Delay(1000);
        await stop.CancelAsync();
        await Task.WhenAll(running);

        var failures = clients.SelectMany(c => c.Failures).ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} failed requests, e.g. {string.Join("; ", failures.Take(5))}");
        Assert.True(clients.Sum(c => c.Succeeded) > 1000, $"only {clients.Sum(c => c.Succeeded)} requests");
        // The drained workers told their clients to reconnect, rather than dropping them.
        Assert.True(clients.Sum(c => c.ClosedByServer) >= 8, $"only {clients.Sum(c => c.ClosedByServer)} responses carried Connection: close while draining ({clients.Sum(c => c.Succeeded)} requests). Output:\n{string.Join("\n", corral.Lines.Where(l => !l.StartsWith(" ", StringComparison.Ordinal)))}");
        Assert.Equal(3, corral.CountLines("Hang up: Master"));
        // Every worker that became ready (2 at start, 2 per HUP, one per recycle) had warmed up first, when asked to.
        var ready = corral.CountLines(@"Worker ready \(pid");
        var warmed = corral.CountLines($"Warmed up: {warmupRequests} requests to / in");
        Assert.True(warmupRequests == 0 ? warmed == 0 : warmed >= ready && ready >= 8, $"{warmed} warm-ups, {ready} workers ready");
    }
}

/// <summary>USR2 + WINCH + TERM: the master itself is replaced under load, and nothing is lost.</summary>
public sealed class UpgradeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-upgrade-").FullName;
    private int _newMaster;

    public void Dispose()
    {
        if (_newMaster > 0)
        {
            foreach (var pid in Descendants(_newMaster).Append(_newMaster))
            {
                Kill(pid, SIGKILL);
            }
        }
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Usr2WinchTermReplaceTheMasterWithoutAFailedRequest()
    {
        var apps = await TestApps.GetAsync();
        var pidFile = Path.Combine(_dir, "corral.pid");
        var sock = Path.Combine(_dir, "corral.sock");
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "-b", "unix:" + sock, "-p", pidFile, "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var oldWorkers = await corral.WaitForWorkersAsync(2, TimeSpan.FromSeconds(30));

        var clients = Enumerable.Range(0, 4).Select(_ => new KeepAliveClient()).ToList();
        using var stop = new CancellationTokenSource();
        var running = clients.Select(c => c.RunAsync(port, "/", stop.Token)).ToList();
        await Task.Delay(500);

        corral.Signal(SIGUSR2);
        await WaitForFileAsync(pidFile + ".2");
        _newMaster = int.Parse(File.ReadAllText(pidFile + ".2").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        await corral.WaitForLineAsync($@"\[{_newMaster}\] \[INFO\] Listening at: http://127\.0\.0\.1:{port} ", TimeSpan.FromSeconds(30));
        await WaitUntilAsync(() => Children(_newMaster).Count == 2 && corral.CountLines($@"\[{_newMaster}\] \[DEBUG\] Worker ready") == 2);

        corral.Signal(SIGWINCH);
        await WaitUntilAsync(() => oldWorkers.All(w => !IsAlive(w)));
        corral.Signal(SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        await WaitUntilAsync(() => !File.Exists(pidFile + ".2") && File.Exists(pidFile));
        Assert.Equal(_newMaster.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(pidFile).Trim());
        Assert.True(File.Exists(sock), "the old master removed the unix socket the new one serves");
        // `corral ctl -p PIDFILE` reaches the new master at PIDFILE.ctl (it was PIDFILE.2.ctl until now).
        await WaitUntilAsync(() => !File.Exists(pidFile + ".2.ctl") && File.Exists(pidFile + ".ctl"));
        var status = await Observability.Observe.CtlAsync("-p", pidFile, "status", "--json");
        Assert.True(status.Exit == 0, status.Err);
        using (var json = System.Text.Json.JsonDocument.Parse(status.Out))
        {
            Assert.Equal(_newMaster, json.RootElement.GetProperty("pid").GetInt32());
        }

        await Task.Delay(500);
        await stop.CancelAsync();
        await Task.WhenAll(running);
        var failures = clients.SelectMany(c => c.Failures).ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} failed requests, e.g. {string.Join("; ", failures.Take(5))}");
        Assert.True(clients.Sum(c => c.Succeeded) > 200);

        // The new master carries on alone, and cleans up after itself.
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        Kill(_newMaster, SIGTERM);
        await WaitUntilAsync(() => !IsAlive(_newMaster));
        Assert.False(File.Exists(sock));
        Assert.False(File.Exists(pidFile));
        Assert.False(File.Exists(pidFile + ".ctl"), "the new master left its control socket behind");
        _newMaster = 0;
    }

    private static async Task WaitForFileAsync(string path) => await WaitUntilAsync(() => File.Exists(path) && File.ReadAllText(path).Trim().Length > 0);

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("condition not met within 30 s");
            }
            await Task.Delay(100);
        }
    }
}

/// <summary>Crash-loop protection (IIS's rapid-fail): back-off, a quiet master, and recovery.</summary>
public sealed class CrashLoopTests : IDisposable
{
    private readonly string _flag = Path.Combine(Path.GetTempPath(), $"corral-crash-{Guid.NewGuid():N}");

    public void Dispose() => File.Delete(_flag);

    [Fact]
    public async Task AWorkerThatCrashesAtBootIsRetriedWithBackoffAndTheMasterStaysIdle()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp],
            new Dictionary<string, string> { ["TESTAPP_CRASH_IF_EXISTS"] = _flag });
        var port = await corral.PortAsync();
        var worker = (await corral.WaitForWorkersAsync(1, TimeSpan.FromSeconds(30))).Single();

        // From now on every boot crashes; the serving worker dies.
        File.WriteAllText(_flag, "");
        var cpuBefore = CpuSeconds(corral.Pid);
        Kill(worker, SIGKILL);
        await corral.WaitForLineAsync("Worker boot failed 5 time", TimeSpan.FromSeconds(60));
        var cpu = CpuSeconds(corral.Pid) - cpuBefore;

        var steps = corral.Lines.Where(l => l.Contains("next attempt in", StringComparison.Ordinal)).ToList();
        Assert.Contains(steps, l => l.Contains("next attempt in 0.5 s", StringComparison.Ordinal));
        Assert.Contains(steps, l => l.Contains("next attempt in 4 s", StringComparison.Ordinal));
        Assert.Contains(corral.Lines, l => l.Contains("crash flag", StringComparison.Ordinal));
        // Five failed boots (each a .NET start) and the waits between them: the master itself idles.
        Assert.True(cpu < 2.0, $"the master used {cpu:0.00} s of CPU during the crash loop");

        File.Delete(_flag);
        await corral.WaitForWorkersAsync(1, TimeSpan.FromSeconds(40));
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
    }

    private static double CpuSeconds(int pid)
    {
        var text = File.ReadAllText($"/proc/{pid}/stat");
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        // utime and stime, fields 14 and 15 of stat (11 and 12 after the state field), in clock ticks.
        return (long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) / 100.0;
    }
}

/// <summary>The release-folder deploy: swap a `current` symlink, HUP; a broken release keeps the old workers.</summary>
public sealed class SymlinkDeployTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-deploy-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task ABrokenReleaseKeepsTheOldWorkersAndAFixedOneRecovers()
    {
        var apps = await TestApps.GetAsync();
        var built = Path.GetDirectoryName(apps.TestApp)!;
        var v1 = Copy(built, "v1");
        var broken = Copy(built, "v2-broken");
        File.WriteAllText(Path.Combine(broken, "TestApp.dll"), "not an assembly"); // a botched upload
        var v3 = Copy(built, "v3");
        var (corral, port, old, current) = await StartOnCurrentAsync(v1);
        using var _ = corral;

        Swap(current, broken);
        corral.Signal(SIGHUP);
        await corral.WaitForLineAsync("Reload failed: keeping the old workers", TimeSpan.FromSeconds(30));
        Assert.Equal(old, await corral.WaitForWorkersAsync(2, TimeSpan.FromSeconds(10)));
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);

        Swap(current, v3);
        corral.Signal(SIGHUP);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        HashSet<int> now;
        do
        {
            now = await corral.WaitForWorkersAsync(2, TimeSpan.FromSeconds(30));
        }
        while (now.Overlaps(old) && DateTime.UtcNow < deadline);
        Assert.False(now.Overlaps(old));
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        // The new workers run in the new release folder (`current` resolved at their start).
        Assert.All(now, pid => Assert.Equal(v3, File.ResolveLinkTarget($"/proc/{pid}/cwd", returnFinalTarget: false)?.FullName));
    }

    [Fact]
    public async Task AReleaseWithStartupHooksOffIsRefusedAtItsSpawnAndTheOldWorkersStay()
    {
        var apps = await TestApps.GetAsync();
        var built = Path.GetDirectoryName(apps.TestApp)!;
        var v1 = Copy(built, "v1");
        var trimmed = Copy(built, "v2-trimmed");
        var config = Path.Combine(trimmed, "TestApp.runtimeconfig.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config))!;
        var options = json["runtimeOptions"]!.AsObject();
        if (options["configProperties"] is null)
        {
            options["configProperties"] = new System.Text.Json.Nodes.JsonObject();
        }
        options["configProperties"]!["System.StartupHookProvider.IsSupported"] = false; // as a trimmed build writes it
        File.WriteAllText(config, json.ToJsonString());
        var (corral, port, old, current) = await StartOnCurrentAsync(v1);
        using var _ = corral;

        Swap(current, trimmed);
        corral.Signal(SIGHUP);
        await corral.WaitForLineAsync("Reload failed: keeping the old workers", TimeSpan.FromSeconds(30));
        Assert.Contains("Can't start a worker: APP " + Path.Combine(current, "TestApp.dll") + ": TestApp.runtimeconfig.json switches startup hooks off", corral.Output);
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        Assert.Equal(old, await corral.WaitForWorkersAsync(2, TimeSpan.FromSeconds(10)));
    }

    /// <summary>corral -w 2 on `current` -> <paramref name="release"/>, both workers ready.</summary>
    private async Task<(CorralProcess Corral, int Port, HashSet<int> Workers, string Current)> StartOnCurrentAsync(string release)
    {
        var current = Path.Combine(_dir, "current");
        File.CreateSymbolicLink(current, release);
        var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", Path.Combine(current, "TestApp.dll")]);
        try
        {
            return (corral, await corral.PortAsync(), await corral.WaitForWorkersAsync(2, TimeSpan.FromSeconds(30)), current);
        }
        catch
        {
            corral.Dispose();
            throw;
        }
    }

    private string Copy(string from, string name)
    {
        var to = Path.Combine(_dir, "releases", name);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return to;
    }

    /// <summary>An atomic swap, as deploy tools do it: a new link renamed over the old.</summary>
    private static void Swap(string link, string target)
    {
        var next = link + ".next";
        File.CreateSymbolicLink(next, target);
        // rename(2) over the old link (File.Move does not take a link to a directory).
        using var mv = System.Diagnostics.Process.Start("mv", ["-T", next, link]);
        mv.WaitForExit(10_000);
        Assert.Equal(0, mv.ExitCode);
    }
}
