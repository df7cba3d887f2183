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
}
