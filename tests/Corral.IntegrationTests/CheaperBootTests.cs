using System.Globalization;
using System.Reflection.PortableExecutable;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests;

/// <summary>
/// What makes a new worker cheaper (docs/capacity-B.md): the app's multicore JIT profile, handed from
/// each worker that exits gracefully to the next; a booting worker's lower CPU priority, every thread
/// of it, until it is ready; a project published ReadyToRun.
/// </summary>
public sealed class CheaperBootTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(40);

    [Fact]
    public async Task AWorkerThatExitsGracefullyLeavesTheJitProfileItsSuccessorReplays()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:19201", "--log-level", "debug", "--jit-profile", "on", apps.TestApp]);
        var first = await corral.WaitForLineAsync(@"JIT profile (\S+) recorded from scratch", Boot);
        var profile = first.Groups[1].Value;
        var folder = Path.GetDirectoryName(profile)!;
        var worker1 = Assert.Single(await corral.WaitForWorkersAsync(1, Boot));
        Assert.False(File.Exists(profile), "no worker has exited yet");

        // HUP: the old worker exits gracefully and its profile becomes the app's.
        corral.Signal(ProcessTree.SIGHUP);
        var saved = await corral.WaitForLineAsync(@"\[(\d+)\] \[DEBUG\] JIT profile \S+ saved \((\d+) bytes\)", Boot);
        Assert.Equal(worker1, int.Parse(saved.Groups[1].Value, CultureInfo.InvariantCulture));
        var size = long.Parse(saved.Groups[2].Value, CultureInfo.InvariantCulture);
        var worker2 = Assert.Single(await corral.WaitForWorkersAsync(1, Boot, gone: [worker1]));
        await WaitUntilAsync(() => !File.Exists($"{profile}.{worker1}"), "the exited worker's own file is renamed into place");
        var written = new FileInfo(profile);
        Assert.True(written.Exists && written.Length == size && size > 1000, $"{profile}: {(written.Exists ? written.Length : -1)} bytes, logged {size}");

        // The next worker replays exactly that profile.
        corral.Signal(ProcessTree.SIGHUP);
        var replayed = await corral.WaitForLineAsync(@"JIT profile (\S+) replayed \((\d+) bytes\)", Boot);
        Assert.Equal(profile, replayed.Groups[1].Value);
        Assert.Equal(size, long.Parse(replayed.Groups[2].Value, CultureInfo.InvariantCulture));
        var worker3 = Assert.Single(await corral.WaitForWorkersAsync(1, Boot, gone: [worker1, worker2]));
        await corral.WaitForLineAsync(@"JIT profile \S+ saved", Boot, occurrence: 2);
        await WaitUntilAsync(() => new FileInfo(profile).LastWriteTimeUtc > written.LastWriteTimeUtc, "worker 2's profile replaces worker 1's");

        // A worker killed by a signal writes nothing: the master removes its own file (the copy it replays), the app's stays.
        Assert.True(File.Exists($"{profile}.{worker3}"), "the worker records into a copy of its own");
        ProcessTree.Kill(worker3, ProcessTree.SIGKILL);
        await corral.WaitForWorkersAsync(1, Boot, gone: [worker3]);
        await WaitUntilAsync(() => !File.Exists($"{profile}.{worker3}"), "the killed worker's own file is removed");
        Assert.True(File.Exists(profile));
        var left = Directory.GetFiles(folder, "*.jitprofile*").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(2, left.Count); // the app's, and the live worker's own

        corral.Signal(ProcessTree.SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(Directory.Exists(folder), "the master's folder goes at its exit");
    }

    [Fact]
    public async Task ByDefaultNoJitProfileIsUsed()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:19202", "--log-level", "debug", apps.TestApp]);
        var worker1 = Assert.Single(await corral.WaitForWorkersAsync(1, Boot));
        corral.Signal(ProcessTree.SIGHUP);
        await corral.WaitForWorkersAsync(1, Boot, gone: [worker1]);
        await corral.WaitForLineAsync($@"Worker exiting \(pid: {worker1}\)", Boot);
        Assert.Equal(0, corral.CountLines("JIT profile"));
    }

    [RootFact]
    public async Task ABootingWorkerRunsEveryThreadAtTheBootNiceUntilItIsReady()
    {
        var apps = await TestApps.GetAsync();
        // The app sleeps 4 s in Main (the runtime's threads are up by then): a boot long enough to look at.
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:19203", "--log-level", "debug", "--boot-nice", "10", "-e", "TESTAPP_SLEEP_AT_START_MS=4000", apps.TestApp]);
        var pid = int.Parse((await corral.WaitForLineAsync(@"Booting worker with pid: (\d+)", Boot)).Groups[1].Value, CultureInfo.InvariantCulture);
        await Task.Delay(1500);
        Assert.Equal(0, corral.CountLines(@"Worker ready"));
        var booting = TaskNices(pid);
        Assert.True(booting.Count >= 5, $"the worker's threads: {booting.Count}");
        Assert.All(booting, n => Assert.Equal(10, n.Value));
        Assert.All(TaskNices(corral.Pid), n => Assert.Equal(0, n.Value)); // the master's threads (the one that forked included)

        Assert.Single(await corral.WaitForWorkersAsync(1, Boot));
        await corral.WaitForLineAsync($@"Worker \(pid:{pid}\) back at nice 0 \(\d+ threads\)", Boot);
        var ready = TaskNices(pid);
        Assert.True(ready.Count > booting.Count / 2);
        Assert.All(ready, n => Assert.Equal(0, n.Value));
    }

    [RootFact]
    public async Task ByDefaultAWorkerBootsAtTheMastersPriority()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:19204", "--log-level", "debug", "-e", "TESTAPP_SLEEP_AT_START_MS=3000", apps.TestApp]);
        var pid = int.Parse((await corral.WaitForLineAsync(@"Booting worker with pid: (\d+)", Boot)).Groups[1].Value, CultureInfo.InvariantCulture);
        await Task.Delay(1500);
        Assert.Equal(0, corral.CountLines(@"Worker ready"));
        Assert.All(TaskNices(pid), n => Assert.Equal(0, n.Value));
        await corral.WaitForWorkersAsync(1, Boot);
        Assert.Equal(0, corral.CountLines("back at nice"));
    }

    [Fact]
    public async Task APublishedProjectIsReadyToRun()
    {
        var project = await TemplateProjects.NewAsync("web", "R2rOn");
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:19205", "--log-level", "debug", project]);
        var folder = (await corral.WaitForLineAsync(@"Publishing .* \(Release\) to (\S+)$", Boot)).Groups[1].Value;
        await corral.WaitForWorkersAsync(1, TimeSpan.FromMinutes(3));
        Assert.True(NativeHeaderSize(Path.Combine(folder, "R2rOn.dll")) > 0, "R2rOn.dll has no ReadyToRun code");
        Assert.Equal(200, await GetStatusAsync(19205));
    }

    [Fact]
    public async Task ReadyToRunOffPublishesPlainIl()
    {
        var project = await TemplateProjects.NewAsync("web", "R2rOff");
        using var corral = CorralProcess.Start(["-w", "1", "-b", "127.0.0.1:19206", "--log-level", "debug", "--ready-to-run", "off", project]);
        var folder = (await corral.WaitForLineAsync(@"Publishing .* \(Release\) to (\S+)$", Boot)).Groups[1].Value;
        await corral.WaitForWorkersAsync(1, TimeSpan.FromMinutes(3));
        Assert.Equal(0, NativeHeaderSize(Path.Combine(folder, "R2rOff.dll")));
        Assert.Equal(200, await GetStatusAsync(19206));
    }

    /// <summary>Each task's nice value (/proc/PID/task/TID/stat, field 19; the name, field 2, may hold spaces).</summary>
    private static Dictionary<int, int> TaskNices(int pid)
    {
        var nices = new Dictionary<int, int>();
        foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(task, "stat"));
            }
            catch (IOException)
            {
                continue; // the thread ended meanwhile
            }
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            nices[int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture)] = int.Parse(fields[19 - 3], CultureInfo.InvariantCulture);
        }
        return nices;
    }

    /// <summary>The ReadyToRun header's size in the CLI header (0: IL only).</summary>
    private static int NativeHeaderSize(string dll)
    {
        using var pe = new PEReader(File.OpenRead(dll));
        return pe.PEHeaders.CorHeader!.ManagedNativeHeaderDirectory.Size;
    }

    private static async Task<int> GetStatusAsync(int port)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var response = await client.GetAsync($"http://127.0.0.1:{port}/");
        return (int)response.StatusCode;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"within 10 s: {what}");
            await Task.Delay(50);
        }
    }
}
