using Corral.Settings;


namespace Corral.Tests;

/// <summary>-w MIN:MAX from every layer, and its errors: one line each.</summary>
public class WorkerRangeSettingsTests
{
    [Fact]
    public void A_range_on_the_command_line_starts_min_workers()
    {
        var config = Settings.Ok("-w", "1:4", "App.dll");
        Assert.Equal(new WorkerRange(1, 4), config.WorkerRange);
        Assert.True(config.WorkerRange.Adaptive);
        Assert.Equal(1, config.Workers);
    }

    [Fact]
    public void A_single_number_is_a_fixed_count()
    {
        var config = Settings.Ok("-w", "3", "App.dll");
        Assert.Equal(new WorkerRange(3, 3), config.WorkerRange);
        Assert.False(config.WorkerRange.Adaptive);
        Assert.Equal("3", config.WorkerRange.ToString());
    }

    [Fact]
    public void Web_concurrency_and_the_config_file_take_a_range_too()
    {
        Assert.Equal(new WorkerRange(2, 6), Settings.Ok(Settings.Env(("WEB_CONCURRENCY", "2:6")), "App.dll").WorkerRange);
        using var dir = new TempDir();
        var file = dir.File("corral.json", """{ "workers": "1:4", "scale_down_after": 10 }""");
        var config = Settings.Ok("-c", file, "App.dll");
        Assert.Equal(new WorkerRange(1, 4), config.WorkerRange);
        Assert.Equal(TimeSpan.FromSeconds(10), config.ScaleDownAfter);
        var number = dir.File("n.json", """{ "workers": 5 }""");
        Assert.Equal(new WorkerRange(5, 5), Settings.Ok("-c", number, "App.dll").WorkerRange);
    }

    [Fact]
    public void The_scaling_defaults()
    {
        var config = Settings.Ok("App.dll");
        Assert.Equal((1.0, 30.0, 3.0), (config.ScaleUpAfter.TotalSeconds, config.ScaleDownAfter.TotalSeconds, config.ScaleCooldown.TotalSeconds));
    }

    [Theory]
    [InlineData("4:1", "--workers (workers): '4:1' is not valid: MIN (4) is above MAX (1) (expected a whole number from 1 to 1024, or MIN:MAX (e.g. 1:4) for a count that follows the load) (from the command line)")]
    [InlineData("0:3", "--workers (workers): '0:3' is not valid: '0' is not a whole number from 1 to 1024 (expected a whole number from 1 to 1024, or MIN:MAX (e.g. 1:4) for a count that follows the load) (from the command line)")]
    [InlineData("1:x", "--workers (workers): '1:x' is not valid: 'x' is not a whole number from 1 to 1024 (expected a whole number from 1 to 1024, or MIN:MAX (e.g. 1:4) for a count that follows the load) (from the command line)")]
    public void A_bad_range_is_one_line_naming_what_is_wrong(string value, string expected)
    {
        Assert.Equal(expected, Settings.Error("-w", value, "App.dll"));
    }
}
