using System.Globalization;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>
/// -u/--user and -g/--group: the master (root here) binds and stays root; every worker, and every
/// thread of it, runs as the user and group, serves, and writes the log files the master handed over,
/// through USR1 (logrotate), HUP and --max-requests recycling. Ports 19600-19699.
/// </summary>
public sealed class WorkerUserTests : IDisposable
{
    private const uint Nobody = 65534, NoGroup = 65534;

    /// <summary>Root-owned and 0755, as /var/log/app would be: the workers' user cannot create files in it.</summary>
    private readonly string _dir = ReadableDirectory("corral-user-");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [RootFact]
    public async Task Every_thread_of_every_worker_is_the_user_the_master_stays_root_and_the_workers_write_the_logs_through_usr1_and_hup()
    {
        var app = await ReadableTestAppAsync();
        var errorLog = Path.Combine(_dir, "error.log");
        var accessLog = Path.Combine(_dir, "access.log");
        using var corral = CorralProcess.Start(["-u", "nobody", "-g", "nogroup", "-w", "2", "-b", "127.0.0.1:19601", "--log-level", "debug",
            "--error-logfile", errorLog, "--access-logfile", accessLog, app]);
        var workers = await WaitForReadyWorkersAsync(corral, errorLog, 2);

        foreach (var worker in workers)
        {
            AssertEveryThreadIs(worker, Nobody, NoGroup, [NoGroup]);
        }
        AssertEveryThreadIs(corral.Pid, 0, 0, null);
        var served = new HashSet<int>();
        for (var i = 0; i < 20; i++)
        {
            var (status, body) = await Http.GetAsync(19601, "/pid");
            Assert.Equal(200, status);
            served.Add(int.Parse(body, CultureInfo.InvariantCulture));
        }
        Assert.Subset(workers, served);
        await WaitUntilAsync(() => Lines(accessLog).Count(l => l.Contains("\"GET /pid HTTP/1.1\" 200", StringComparison.Ordinal)) == 20, "20 access-log lines");
        AssertOwnedByNobody(errorLog);
        AssertOwnedByNobody(accessLog);

        // logrotate: rename, then USR1. The master makes the new files and hands them over; the workers reopen them.
        File.Move(errorLog, errorLog + ".1");
        File.Move(accessLog, accessLog + ".1");
        corral.Signal(SIGUSR1);
        await WaitUntilAsync(() => File.Exists(errorLog) && File.Exists(accessLog), "the reopened log files");
        AssertOwnedByNobody(errorLog);
        AssertOwnedByNobody(accessLog);
        // Signals arrive in their own time: until the workers reopened, a request could land in the old file.
        await WaitUntilAsync(async () =>
        {
            await Http.GetAsync(19601, "/pid?after-usr1");
            return Lines(accessLog).Any(l => l.Contains("GET /pid?after-usr1", StringComparison.Ordinal));
        }, "an access-log line in the reopened file");

        // HUP: new workers, as nobody too; the old ones say goodbye in the reopened error log, as nobody.
        corral.Signal(SIGHUP);
        var next = await WaitForReadyWorkersAsync(corral, errorLog, 2, except: workers);
        foreach (var worker in next)
        {
            AssertEveryThreadIs(worker, Nobody, NoGroup, [NoGroup]);
        }
        await WaitUntilAsync(() => workers.All(w => Lines(errorLog).Any(l => l.Contains($"[{w}] [INFO] Worker exiting (pid: {w})", StringComparison.Ordinal))),
            "the old workers' own lines in the reopened error log");
        var all = File.ReadAllText(errorLog) + File.ReadAllText(errorLog + ".1");
        Assert.DoesNotContain("Cannot reopen", all);
        Assert.DoesNotContain("Cannot hand", all);

        corral.Signal(SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(60)));
    }

    [RootFact]
    public async Task Numeric_ids_work_and_a_recycled_worker_switches_too()
    {
        var app = await ReadableTestAppAsync();
        using var corral = CorralProcess.Start(["-u", "65534", "-g", "65534", "-w", "1", "--max-requests", "5", "-b", "127.0.0.1:19602", "--log-level", "debug", app]);
        var first = await corral.WaitForWorkersAsync(1, TimeSpan.FromSeconds(60));
        AssertEveryThreadIs(first.Single(), Nobody, NoGroup, [NoGroup]);
        var environment = File.ReadAllText($"/proc/{first.Single()}/environ").Split('\0');
        Assert.Contains("HOME=/nonexistent", environment); // nobody's home, not root's
        Assert.Contains("USER=nobody", environment);

        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(200, (await Http.GetAsync(19602, "/pid")).Status);
        }
        var second = await corral.WaitForWorkersAsync(1, TimeSpan.FromSeconds(60), gone: first);
        AssertEveryThreadIs(second.Single(), Nobody, NoGroup, [NoGroup]);
        Assert.Equal(200, (await Http.GetAsync(19602, "/pid")).Status);
    }

    /// <summary>
    /// A project under -u: the master (root) publishes it into its builds folder and hands that folder
    /// over, and the workers, as nobody, run from it and bind their SignalR forwarding sockets in the
    /// master's forwarding folder, handed over too (a worker that cannot bind there fails its boot).
    /// </summary>
    [RootFact]
    public async Task A_project_is_published_where_the_users_workers_run_it()
    {
        var project = await TemplateProjects.SharedAsync("razor");
        using var corral = CorralProcess.Start(["-u", "nobody", "-g", "nogroup", "-w", "2", "-b", "127.0.0.1:19607", "--log-level", "debug", project],
            new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production" });
        var workers = await corral.WaitForWorkersAsync(2, TimeSpan.FromMinutes(5));
        foreach (var worker in workers)
        {
            AssertEveryThreadIs(worker, Nobody, NoGroup, [NoGroup]);
        }
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(200, (await Http.GetAsync(19607, "/")).Status);
        }
        Assert.DoesNotContain("Cannot hand", corral.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("will not be routed between workers", corral.Output, StringComparison.Ordinal);
    }

    [RootFact]
    public async Task A_native_aot_app_switches_in_the_agent_it_links_in()
    {
        // No startup hook: the module initializer of the linked-in agent switches, before the app's Main.
        var published = await TestApps.SeedAppNativeAotAsync();
        var exe = Path.Combine(ReadableCopy(Path.GetDirectoryName(published)!, "corral-user-aot-"), Path.GetFileName(published));
        using var redis = SeedApp.Tests.RedisServer.Start();
        using var corral = CorralProcess.Start(["-u", "nobody", "-g", "nogroup", "-w", "1", "-b", "127.0.0.1:19606", "--log-level", "debug",
            "-e", "Redis__Host=127.0.0.1", "-e", $"Redis__Port={redis.Port}", exe]);
        var worker = (await corral.WaitForWorkersAsync(1, TimeSpan.FromSeconds(60))).Single();
        Assert.Equal(exe, File.ResolveLinkTarget($"/proc/{worker}/exe", returnFinalTarget: false)?.FullName);
        AssertEveryThreadIs(worker, Nobody, NoGroup, [NoGroup], minThreads: 2);
        Assert.Equal("Hello from seed-app!", (await Http.GetAsync(19606, "/")).Body);
    }

    [Fact]
    public async Task An_unknown_user_is_one_line_and_exit_2()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-u", "no-such-user-of-corral", "-b", "127.0.0.1:19603", apps.TestApp]);
        Assert.Equal(2, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(["corral: error: --user (user): 'no-such-user-of-corral' is not valid: no such user (expected a user name or a numeric uid) (from the command line)"], corral.Lines);
    }

    [RootFact]
    public async Task A_master_that_is_not_root_cannot_switch_workers_to_another_user()
    {
        var app = await ReadableTestAppAsync();
        using var corral = CorralProcess.StartWrapped("setpriv", ["--reuid=nobody", "--regid=nogroup", "--init-groups"], ["-u", "daemon", "-b", "127.0.0.1:19604", app]);
        Assert.Equal(2, await corral.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var line = Assert.Single(corral.Lines);
        Assert.StartsWith($"corral: error: --user (user): 'daemon' is not valid: only root can switch the workers to another user, and corral runs as uid {Nobody}", line);
    }

    [RootFact]
    public async Task A_worker_that_cannot_switch_fails_its_boot_in_one_line_and_never_serves()
    {
        // Root without CAP_SETUID and CAP_SETGID (a container run with --cap-drop): the master cannot know, the worker finds out.
        var app = await ReadableTestAppAsync();
        using var corral = CorralProcess.StartWrapped("setpriv", ["--bounding-set", "-setuid,-setgid"], ["-u", "nobody", "-b", "127.0.0.1:19605", app]);
        Assert.Equal(3, await corral.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        const string Why = "cannot switch the worker to user nobody (uid 65534, gid 65534): setgroups: Operation not permitted";
        var worker = Assert.Single(corral.Lines, l => l.EndsWith("] [ERROR] " + Why, StringComparison.Ordinal));
        Assert.DoesNotContain($"[{corral.Pid}]", worker); // the worker's own line
        Assert.Single(corral.Lines, l => l.EndsWith("[ERROR] Reason: Worker failed to boot. " + Why, StringComparison.Ordinal));
        Assert.DoesNotContain(corral.Lines, l => l.Contains("Now listening", StringComparison.Ordinal) || l.Contains("Worker ready", StringComparison.Ordinal));
    }

    private static void AssertEveryThreadIs(int pid, uint uid, uint gid, uint[]? groups, int minThreads = 6)
    {
        var tasks = Directory.GetDirectories($"/proc/{pid}/task");
        Assert.True(tasks.Length >= minThreads, $"pid {pid} has {tasks.Length} threads: is it a .NET process?");
        foreach (var task in tasks)
        {
            string[] status;
            try
            {
                status = File.ReadAllLines(Path.Combine(task, "status"));
            }
            catch (IOException)
            {
                continue; // the thread ended meanwhile
            }
            string Field(string key) => status.Single(l => l.StartsWith(key + ":", StringComparison.Ordinal))[(key.Length + 1)..].Trim();
            uint[] Ids(string key) => [.. Field(key).Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries).Select(v => uint.Parse(v, CultureInfo.InvariantCulture))];
            var where = $"pid {pid} thread {Path.GetFileName(task)} ({Field("Name")})";
            Assert.True(Ids("Uid").SequenceEqual([uid, uid, uid, uid]), $"{where}: Uid {Field("Uid")}, expected {uid} (real, effective, saved, fs)");
            Assert.True(Ids("Gid").SequenceEqual([gid, gid, gid, gid]), $"{where}: Gid {Field("Gid")}, expected {gid}");
            if (groups is not null)
            {
                Assert.True(Ids("Groups").Order().SequenceEqual(groups.Order()), $"{where}: Groups {Field("Groups")}, expected {string.Join(' ', groups)}");
            }
        }
    }

    private static void AssertOwnedByNobody(string path)
    {
        using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u:%g %F", path]) { RedirectStandardOutput = true })!;
        var owner = stat.StandardOutput.ReadToEnd().Trim();
        Assert.True(stat.WaitForExit(10_000));
        Assert.Equal($"{Nobody}:{NoGroup} regular file", owner.Replace("regular empty file", "regular file", StringComparison.Ordinal));
    }

    private static string[] Lines(string path)
    {
        try
        {
            return File.ReadAllLines(path);
        }
        catch (FileNotFoundException)
        {
            return [];
        }
    }

    /// <summary>The workers that logged "Worker ready" in <paramref name="errorLog"/> and are the master's children now, once there are <paramref name="count"/>.</summary>
    private static async Task<HashSet<int>> WaitForReadyWorkersAsync(CorralProcess corral, string errorLog, int count, IReadOnlyCollection<int>? except = null)
    {
        HashSet<int> ready = [];
        await WaitUntilAsync(() =>
        {
            Assert.False(corral.HasExited, $"corral exited. Output:\n{corral.Output}\n{string.Join('\n', Lines(errorLog))}");
            var logged = Lines(errorLog).Select(l => Regex.Match(l, @"Worker ready \(pid: (\d+)\)")).Where(m => m.Success)
                .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToHashSet();
            ready = [.. Children(corral.Pid).Where(logged.Contains).Where(p => except is null || !except.Contains(p))];
            return ready.Count == count;
        }, $"{count} ready workers");
        return ready;
    }

    private static Task WaitUntilAsync(Func<bool> condition, string what) => WaitUntilAsync(() => Task.FromResult(condition()), what);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited 60 s for {what}");
            }
            await Task.Delay(100);
        }
    }

    private static readonly Lazy<Task<string>> s_readableTestApp = new(async () =>
    {
        var built = (await TestApps.GetAsync()).TestApp;
        return Path.Combine(ReadableCopy(Path.GetDirectoryName(built)!, "corral-user-app-"), Path.GetFileName(built));
    });

    /// <summary>
    /// The user's job: the app's folder readable by the workers' user. The shared builds live in
    /// root's 0700 temp folders, so the tests copy them into one that is not.
    /// </summary>
    private static string ReadableCopy(string folder, string prefix)
    {
        var copy = ReadableDirectory(prefix);
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy, Path.GetRelativePath(folder, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return copy;
    }

    private static Task<string> ReadableTestAppAsync() => s_readableTestApp.Value;

    private static string ReadableDirectory(string prefix)
    {
        var dir = Scratch.NewDirectory(prefix);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return dir;
    }
}
