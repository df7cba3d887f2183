using Corral.Lifecycle;

namespace Corral.Tests;

/// <summary>The pid file's stale-or-running decision (Gunicorn's pidfile.py validate, plus a check that the pid is still corral).</summary>
public sealed class PidFileTests
{
    private const int Self = 500;

    [Theory]
    [InlineData("1234\n", PidFile.Holder.Corral, 1234)]
    [InlineData(" 1234 ", PidFile.Holder.Corral, 1234)]
    // Another user's process, or /proc hidden: taken as running, as Gunicorn takes any live pid.
    [InlineData("1234\n", PidFile.Holder.Unknown, 1234)]
    [InlineData("1234\n", PidFile.Holder.Gone, null)]
    // The master died and its pid went to another program.
    [InlineData("1234\n", PidFile.Holder.NotCorral, null)]
    public void ALivePidIsRunningOnlyIfItIsStillCorral(string content, PidFile.Holder holder, int? expected)
    {
        var asked = new List<int>();
        Assert.Equal(expected, PidFile.RunningPid(content, Self, pid =>
        {
            asked.Add(pid);
            return holder;
        }));
        Assert.Equal([1234], asked);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("\n")]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("0")]
    [InlineData("12 34")]
    [InlineData("99999999999999")]
    [InlineData("500\n")] // this process's own pid (Gunicorn: a pid file it wrote itself)
    public void AFileThatNamesNoOtherProcessIsStale(string? content) =>
        Assert.Null(PidFile.RunningPid(content, Self, _ => throw new InvalidOperationException("no process to look at")));

    [Theory]
    [InlineData(true, "/usr/bin/dotnet", "/opt/corral/corral.dll", "-w", "4", "App.dll")]
    [InlineData(true, "dotnet", "exec", "--runtimeconfig", "x.json", "Corral.dll", "App.dll")]
    [InlineData(true, "/home/u/.dotnet/tools/corral", "-p", "x.pid", "App.dll")]
    [InlineData(true, "corral")]
    [InlineData(false, "/usr/bin/dotnet", "App.dll", "corral.dll")]
    [InlineData(false, "/usr/bin/dotnet", "/srv/corral-app/Shop.dll")]
    [InlineData(false, "sleep", "60")]
    [InlineData(false, "/usr/bin/vim", "corral.dll")]
    [InlineData(false)]
    public void TheCommandLineTellsCorralFromAProcessThatReusedThePid(bool corral, params string[] argv) =>
        Assert.Equal(corral, PidFile.IsCorralCommandLine(argv));

    [Fact]
    public void ThisProcessAndAGonePidAreProbedAsSuch()
    {
        // The test host runs dotnet with a test .dll: a live process that is not corral.
        Assert.Equal(PidFile.Holder.NotCorral, PidFile.Probe(Environment.ProcessId));
        Assert.Equal(PidFile.Holder.Gone, PidFile.Probe(int.MaxValue));
    }

    [Fact]
    public void WriteReplacesTheFileAndRemoveOnlyRemovesItsOwn()
    {
        var dir = Directory.CreateTempSubdirectory("corral-pidfile-").FullName;
        try
        {
            var path = Path.Combine(dir, "x.pid");
            File.WriteAllText(path, "77\n");
            PidFile.Write(path, 1234);
            Assert.Equal("1234\n", File.ReadAllText(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(path));
            Assert.Equal(["x.pid"], Directory.GetFiles(dir).Select(Path.GetFileName));

            PidFile.Remove(path, 99);
            Assert.True(File.Exists(path), "removed another process's pid file");
            PidFile.Remove(path, 1234);
            Assert.False(File.Exists(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A master's pid file through a USR2 upgrade: PIDFILE for a fresh master, PIDFILE.2 for the new one until it takes over.</summary>
    [Fact]
    public void AMasterStartedByUsr2WritesPidfile2AndAFreshOneIsRefusedWhileACorralRuns()
    {
        var dir = Directory.CreateTempSubdirectory("corral-pidfile-").FullName;
        try
        {
            var path = Path.Combine(dir, "x.pid");
            var fresh = PidFile.ForMaster(path, new Dictionary<string, string?>());
            Assert.Equal((path, path), (fresh.FinalPath, fresh.Path));
            Assert.Null(fresh.AlreadyRunning());

            // The old master is this process's parent: not gone yet, so no take-over.
            var parent = Corral.Os.Native.ParentPid().ToString(System.Globalization.CultureInfo.InvariantCulture);
            var upgraded = PidFile.ForMaster(path, new Dictionary<string, string?> { [Upgrade.FromVariable] = parent });
            Assert.Equal((path, path + ".2"), (upgraded.FinalPath, upgraded.Path));
            var log = new CapturingLog();
            Assert.True(upgraded.TryWrite(log));
            Assert.False(upgraded.TryTakeOver(log));
            Assert.Equal(Environment.ProcessId + "\n", File.ReadAllText(path + ".2"));

            // The test host is not corral: its pid in PIDFILE.2 is stale.
            Assert.Null(fresh.AlreadyRunning());
            Assert.Empty(log.Lines);

            // A program whose argv[0] is corral is: a fresh master looks at PIDFILE.2 too, not only PIDFILE.
            var corral = Path.Combine(dir, "corral");
            File.CreateSymbolicLink(corral, "/bin/sleep");
            using var running = System.Diagnostics.Process.Start(corral, "60");
            try
            {
                // Process.Start returns once the child is forked, not once it has exec'd: until then its
                // /proc/PID/cmdline is the test host's.
                var execDeadline = DateTime.UtcNow.AddSeconds(10);
                while (PidFile.Probe(running.Id) != PidFile.Holder.Corral && DateTime.UtcNow < execDeadline)
                {
                    Thread.Sleep(5);
                }

                PidFile.Write(path + ".2", running.Id);
                Assert.Equal($"Already running on PID {running.Id} (pid file {path}.2): stop it first, or give this corral another --pid", fresh.AlreadyRunning());
                Assert.Null(PidFile.ForMaster(Path.Combine(dir, "y.pid"), new Dictionary<string, string?>()).AlreadyRunning());
                PidFile.Write(path, running.Id);
                Assert.Equal($"Already running on PID {running.Id} (pid file {path}): stop it first, or give this corral another --pid", fresh.AlreadyRunning());
                PidFile.Write(path + ".2", Environment.ProcessId);
            }
            finally
            {
                running.Kill();
                running.WaitForExit();
            }

            upgraded.Remove();
            Assert.False(File.Exists(path + ".2"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TheNewMasterTakesOverOnceTheOldOneIsGone()
    {
        var dir = Directory.CreateTempSubdirectory("corral-pidfile-").FullName;
        try
        {
            var path = Path.Combine(dir, "x.pid");
            // A pid that is not this process's parent: the old master is gone.
            var pidFile = PidFile.ForMaster(path, new Dictionary<string, string?> { [Upgrade.FromVariable] = "999999999" });
            var log = new CapturingLog();
            Assert.True(pidFile.TryWrite(log));
            Assert.True(pidFile.TryTakeOver(log));
            Assert.Equal([("info", $"The old master (pid:999999999) is gone: this master takes over {path}")], log.Lines);
            Assert.False(File.Exists(path + ".2"));
            Assert.Equal(Environment.ProcessId + "\n", File.ReadAllText(path));
            Assert.Equal(path, pidFile.Path);
            Assert.False(pidFile.TryTakeOver(log)); // once

            pidFile.Remove();
            Assert.False(File.Exists(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void WithoutAPidFileTheNewMasterStillSaysItTakesOver()
    {
        var pidFile = PidFile.ForMaster(null, new Dictionary<string, string?> { [Upgrade.FromVariable] = "999999999" });
        var log = new CapturingLog();
        Assert.Null(pidFile.Path);
        Assert.True(pidFile.TryWrite(log));
        Assert.True(pidFile.TryTakeOver(log));
        Assert.Equal([("info", "The old master (pid:999999999) is gone: this master takes over")], log.Lines);
    }

    [Fact]
    public void AFileThatCannotBeCreatedIsSaidInTheLog()
    {
        var path = Path.Combine(Path.GetTempPath(), "corral-tests-missing-" + Guid.NewGuid().ToString("N"), "x.pid");
        var log = new CapturingLog();
        Assert.False(PidFile.ForMaster(path, new Dictionary<string, string?>()).TryWrite(log));
        var (level, text) = Assert.Single(log.Lines);
        Assert.Equal("error", level);
        Assert.StartsWith($"Can't create the pid file {path}: ", text);
    }
}
