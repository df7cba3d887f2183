using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Corral.IntegrationTests.Infrastructure;
using Corral.IntegrationTests.Observability;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>
/// -p PIDFILE with two operators on one host: a second corral with the same pid file is refused and
/// touches nothing of the first one's (Gunicorn's "Already running on PID N"); a stale pid file is replaced.
/// </summary>
public sealed class PidFileTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-pidfile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Text(int pid) => pid.ToString(CultureInfo.InvariantCulture);

    private static async Task<int> StatusPidAsync(string pidFile)
    {
        var (exit, json, err) = await Observe.CtlAsync("-p", pidFile, "status", "--json");
        Assert.True(exit == 0, err);
        return JsonDocument.Parse(json).RootElement.GetProperty("pid").GetInt32();
    }

    [Fact]
    public async Task ASecondCorralWithTheSamePidFileIsRefusedAndTheFirstStaysReachable()
    {
        var apps = await TestApps.GetAsync();
        var pidFile = Path.Combine(_dir, "corral.pid");
        using var first = CorralProcess.Start(["-b", "127.0.0.1:0", "-p", pidFile, "--log-level", "debug", apps.TestApp]);
        await first.WaitForWorkersAsync(1, Boot);
        Assert.Equal(Text(first.Pid), File.ReadAllText(pidFile).Trim());

        // The second binds a unix socket of its own: refused before binding, it must not create it.
        var secondSocket = Path.Combine(_dir, "second.sock");
        using var second = CorralProcess.Start(["-b", "unix:" + secondSocket, "-p", pidFile, apps.TestApp]);
        Assert.Equal(1, await second.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        var line = Assert.Single(second.Lines);
        Assert.Contains($"Already running on PID {first.Pid}", line);
        Assert.Contains(pidFile, line);
        Assert.False(File.Exists(secondSocket), "the refused corral bound its listener");

        // The first master's files are untouched: kill -HUP $(cat pidfile) and corral ctl still reach it.
        Assert.Equal(Text(first.Pid), File.ReadAllText(pidFile).Trim());
        Assert.Equal(first.Pid, await StatusPidAsync(pidFile));
        Assert.True(Kill(int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture), SIGHUP));
        await first.WaitForLineAsync("Handling signal: hup", TimeSpan.FromSeconds(10));

        first.Signal(SIGTERM);
        Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(File.Exists(pidFile));
        Assert.False(File.Exists(pidFile + ".ctl"));
    }

    [Fact]
    public async Task AKilledMastersPidFileIsStaleAndANewCorralReplacesIt()
    {
        var apps = await TestApps.GetAsync();
        var pidFile = Path.Combine(_dir, "corral.pid");
        using var killed = CorralProcess.Start(["-b", "127.0.0.1:0", "-p", pidFile, "--log-level", "debug", apps.TestApp]);
        var workers = await killed.WaitForWorkersAsync(1, Boot);
        killed.Signal(SIGKILL);
        await killed.WaitForExitAsync(TimeSpan.FromSeconds(10));
        foreach (var w in workers)
        {
            Kill(w, SIGKILL);
        }
        Assert.Equal(Text(killed.Pid), File.ReadAllText(pidFile).Trim());
        Assert.True(File.Exists(pidFile + ".ctl"), "a SIGKILLed master leaves its control socket");

        using var next = CorralProcess.Start(["-b", "127.0.0.1:0", "-p", pidFile, "--log-level", "debug", apps.TestApp]);
        await next.WaitForWorkersAsync(1, Boot);
        Assert.Equal(Text(next.Pid), File.ReadAllText(pidFile).Trim());
        Assert.Equal(next.Pid, await StatusPidAsync(pidFile));
    }

    [Fact]
    public async Task APidFileNamingALiveProcessThatIsNotCorralIsStale()
    {
        var apps = await TestApps.GetAsync();
        var pidFile = Path.Combine(_dir, "corral.pid");
        // The pid of a dead master reused by another program.
        using var other = Process.Start(new ProcessStartInfo("sleep", "60"))!;
        try
        {
            await File.WriteAllTextAsync(pidFile, Text(other.Id) + "\n");
            using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-p", pidFile, "--log-level", "debug", apps.TestApp]);
            await corral.WaitForWorkersAsync(1, Boot);
            Assert.Equal(Text(corral.Pid), File.ReadAllText(pidFile).Trim());
            Assert.Equal(corral.Pid, await StatusPidAsync(pidFile));
        }
        finally
        {
            other.Kill();
        }
    }

    [Fact]
    public async Task APidFileThatIsASymlinkIsReplacedNotWrittenThrough()
    {
        var apps = await TestApps.GetAsync();
        var target = Path.Combine(_dir, "precious.txt");
        await File.WriteAllTextAsync(target, "keep me\n");
        var pidFile = Path.Combine(_dir, "corral.pid");
        File.CreateSymbolicLink(pidFile, target);

        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-p", pidFile, "--log-level", "debug", apps.TestApp]);
        await corral.WaitForWorkersAsync(1, Boot);
        Assert.Equal("keep me\n", await File.ReadAllTextAsync(target));
        Assert.Null(new FileInfo(pidFile).LinkTarget);
        Assert.Equal(Text(corral.Pid), File.ReadAllText(pidFile).Trim());
        Assert.Empty(Directory.GetFiles(_dir, ".corral.pid.*"));
    }

    [Fact]
    public async Task ASecondCorralOnTheSameControlSocketIsRefused()
    {
        var apps = await TestApps.GetAsync();
        var socket = Path.Combine(_dir, "shared.ctl");
        using var first = CorralProcess.Start(["-b", "127.0.0.1:0", "--control-socket", socket, "--log-level", "debug", apps.TestApp]);
        await first.WaitForWorkersAsync(1, Boot);

        using var second = CorralProcess.Start(["-b", "127.0.0.1:0", "--control-socket", socket, apps.TestApp]);
        Assert.Equal(1, await second.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        var line = Assert.Single(second.Lines);
        Assert.Contains("Already running", line);
        Assert.Contains(socket, line);

        var (exit, json, err) = await Observe.CtlAsync("--control-socket", socket, "status", "--json");
        Assert.True(exit == 0, err);
        Assert.Equal(first.Pid, JsonDocument.Parse(json).RootElement.GetProperty("pid").GetInt32());
    }

    [Fact]
    public async Task AfterUsr2OnAnExplicitControlSocketTheOldMastersExitLeavesTheNewOnesSocket()
    {
        var apps = await TestApps.GetAsync();
        var pidFile = Path.Combine(_dir, "corral.pid");
        var socket = Path.Combine(_dir, "explicit.ctl");
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-p", pidFile, "--control-socket", socket, "--log-level", "debug", apps.TestApp]);
        await corral.WaitForWorkersAsync(1, Boot);
        var newMaster = 0;
        try
        {
            corral.Signal(SIGUSR2);
            var deadline = DateTime.UtcNow + Boot;
            while (PidFile(pidFile + ".2") is not { } pid)
            {
                Assert.True(DateTime.UtcNow < deadline, "no PIDFILE.2");
                await Task.Delay(100);
            }
            newMaster = PidFile(pidFile + ".2")!.Value;
            await corral.WaitForLineAsync($@"\[{newMaster}\] \[DEBUG\] Worker ready", Boot);

            corral.Signal(SIGTERM);
            Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            while (PidFile(pidFile) != newMaster)
            {
                Assert.True(DateTime.UtcNow < deadline + Boot, "the new master did not take the pid file over");
                await Task.Delay(100);
            }
            Assert.True(File.Exists(socket), "the old master removed the control socket the new one listens on");
            var (exit, json, err) = await Observe.CtlAsync("--control-socket", socket, "status", "--json");
            Assert.True(exit == 0, err);
            Assert.Equal(newMaster, JsonDocument.Parse(json).RootElement.GetProperty("pid").GetInt32());
        }
        finally
        {
            if (newMaster > 0)
            {
                foreach (var pid in Descendants(newMaster).Append(newMaster))
                {
                    Kill(pid, SIGKILL);
                }
            }
        }

        static int? PidFile(string path) =>
            File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }
}
