using Corral.Os;


namespace Corral.Tests;

public sealed class RuntimeFilesTests
{
    [Theory]
    // A real line of this machine's /proc/PID/stat for a worker, and a command name with spaces and ")".
    [InlineData("8922 (dotnet) S 8910 8910 8910 0 -1 4194560 12150 0 0 0 38 7 0 0 20 0 21 0 4343804 3456 1 2 3", 4343804UL)]
    [InlineData("77 (a) b) (c) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123 0 0", 123UL)]
    public void StartTimeIsField22(string stat, ulong expected) => Assert.Equal(expected, ProcStat.StartTime(stat));

    [Theory]
    [InlineData("")]
    [InlineData("12 (dotnet) S 1 2 3")]
    [InlineData("8922 (dotnet) S 8910 8910 8910 0 -1 4194560 12150 0 0 0 38 7 0 0 20 0 21 0 soon 3456")]
    public void AStatLineWithoutAStartTimeGivesNothing(string stat) => Assert.Null(ProcStat.StartTime(stat));

    [Fact]
    public void CpuSecondsAreUtimePlusStimeInClockTicks()
    {
        // utime 38, stime 7 (fields 14 and 15).
        var stat = "8922 (dotnet) S 8910 8910 8910 0 -1 4194560 12150 0 0 0 38 7 0 0 20 0 21 0 4343804 3456 1 2 3";
        Assert.Equal(45.0 / ProcStat.ClockTicks, ProcStat.CpuSeconds(stat));
        Assert.Null(ProcStat.CpuSeconds("1 (x) S 1 2"));
        Assert.InRange(ProcStat.ClockTicks, 1, 10_000);
        // This process has used some CPU by now; a pid that does not exist has none to read.
        Assert.InRange(ProcStat.CpuSeconds(Environment.ProcessId) ?? -1, 0.01, 10_000);
        Assert.Null(ProcStat.CpuSeconds(int.MaxValue));
    }

    [Fact]
    public void PathsAreTheRuntimesNamesInTmpdirOrTmp()
    {
        Assert.Equal(
            ["/tmp/clr-debug-pipe-42-7-in", "/tmp/clr-debug-pipe-42-7-out", "/tmp/dotnet-diagnostic-42-7-socket"],
            RuntimeFiles.For(42, 7, null).Paths);
        Assert.Equal("/srv/tmp/dotnet-diagnostic-42-7-socket", RuntimeFiles.For(42, 7, "/srv/tmp").Paths[2]);
    }

    [Fact]
    public void OwnProcessIsReadFromProc()
    {
        var files = RuntimeFiles.Of(Environment.ProcessId, "/x");
        Assert.NotNull(files);
        Assert.StartsWith($"/x/clr-debug-pipe-{Environment.ProcessId}-", files.Paths[0]);
        Assert.Null(RuntimeFiles.Of(int.MaxValue, null));
    }
}
