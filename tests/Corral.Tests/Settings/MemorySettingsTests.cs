using Corral.Settings;

namespace Corral.Tests;

/// <summary>--max-worker-memory and --max-worker-memory-ceiling: sizes, defaults, and the ceiling above the limit.</summary>
public class MemorySettingsTests
{
    private const long Mi = 1L << 20;

    [Theory]
    [InlineData("512MB", 512 * Mi)]
    [InlineData("512M", 512 * Mi)]
    [InlineData("512mb", 512 * Mi)]
    [InlineData("300MiB", 300 * Mi)]
    [InlineData("1G", 1L << 30)]
    [InlineData("1GB", 1L << 30)]
    [InlineData("1.5G", 3L << 29)]
    [InlineData("65536K", 64 * Mi)]
    [InlineData("536870912", 512 * Mi)]
    [InlineData(" 512 MB ", 512 * Mi)]
    [InlineData("0", 0)]
    public void A_size_is_read_in_1024s(string text, long bytes)
    {
        Assert.Equal(bytes, ByteSize.Parse(text));
        Assert.Equal(bytes, Settings.Ok("--max-worker-memory", text, "App.dll").MaxWorkerMemory);
    }

    [Theory]
    [InlineData("512XB")]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("MB")]
    [InlineData("1.2.3M")]
    [InlineData("99999999999T")]
    public void Not_a_size(string text) => Assert.Null(ByteSize.Parse(text));

    [Fact]
    public void Unset_or_zero_is_off_and_has_no_ceiling()
    {
        var config = Settings.Ok("App.dll");
        Assert.Equal(0, config.MaxWorkerMemory);
        Assert.Equal(0, config.MaxWorkerMemoryCeiling);
        Assert.Equal(0, Settings.Ok("--max-worker-memory", "0", "App.dll").MaxWorkerMemoryCeiling);
    }

    [Fact]
    public void The_ceiling_defaults_to_one_and_a_half_times_the_limit()
    {
        Assert.Equal(768 * Mi, Settings.Ok("--max-worker-memory", "512MB", "App.dll").MaxWorkerMemoryCeiling);
        Assert.Equal(600 * Mi, Settings.Ok("--max-worker-memory", "512MB", "--max-worker-memory-ceiling", "600M", "App.dll").MaxWorkerMemoryCeiling);
    }

    [Fact]
    public void A_ceiling_not_above_the_limit_is_a_one_line_error()
    {
        var error = Settings.Error("--max-worker-memory", "512MB", "--max-worker-memory-ceiling", "512M", "App.dll");
        Assert.Equal("--max-worker-memory-ceiling (max_worker_memory_ceiling): '512M' is not valid: it must be above --max-worker-memory ('512MB'), or be left unset (1.5 x the limit)", error);
        Settings.Error("--max-worker-memory", "1G", "--max-worker-memory-ceiling", "800MB", "App.dll");
    }

    [Fact]
    public void A_ceiling_without_a_limit_is_an_error()
    {
        var error = Settings.Error("--max-worker-memory-ceiling", "1G", "App.dll");
        Assert.Contains("needs --max-worker-memory", error);
    }

    [Fact]
    public void A_limit_too_small_for_any_worker_is_refused()
    {
        var error = Settings.Error("--max-worker-memory", "10MB", "App.dll");
        Assert.StartsWith("--max-worker-memory (max_worker_memory): '10MB' is not valid: below 32 MiB", error);
    }

    [Fact]
    public void A_config_file_takes_a_size_as_text_or_as_bytes()
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", """{ "max_worker_memory": "400MB", "max_worker_memory_ceiling": 629145600 }""");
        var config = Settings.Ok("-c", file, "App.dll");
        Assert.Equal(400 * Mi, config.MaxWorkerMemory);
        Assert.Equal(600 * Mi, config.MaxWorkerMemoryCeiling);
    }
}
