using Corral.Processes;

namespace Corral.Tests;

/// <summary>The GC settings each worker gets under --max-worker-memory, unless the app set its own.</summary>
public class GcBudgetTests
{
    private static (IReadOnlyDictionary<string, string> Variables, string? Summary) Budget(string[] argv, Dictionary<string, string?>? env = null, string[]? runtimeConfig = null, int cores = 8) =>
        GcBudget.For(Settings.Ok([.. argv, "App.dll"]), env ?? [], runtimeConfig ?? [], cores);

    [Fact]
    public void Without_a_limit_nothing_is_set()
    {
        var (variables, summary) = Budget(["--gc", "server", "-w", "4"]);
        Assert.Empty(variables);
        Assert.Null(summary);
    }

    [Fact]
    public void The_heap_hard_limit_is_the_ceiling_in_hex()
    {
        var (variables, summary) = Budget(["--max-worker-memory", "512MB"]);
        // 1.5 x 512 MiB = 768 MiB = 0x30000000
        Assert.Equal(new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "30000000" }, variables);
        Assert.Equal("Workers' GC budget for --max-worker-memory: GC heap hard limit 768 MiB (DOTNET_GCHeapHardLimit=0x30000000)", summary);
    }

    [Fact]
    public void Server_GC_gets_cores_over_workers_heaps_not_pinned()
    {
        var (variables, _) = Budget(["--max-worker-memory", "512MB", "--gc", "server", "-w", "3"], cores: 32);
        Assert.Equal("a", variables["DOTNET_GCHeapCount"]); // 32 / 3 = 10
        Assert.Equal("1", variables["DOTNET_GCNoAffinitize"]);
        Assert.Equal("1", Budget(["--max-worker-memory", "512MB", "--gc", "server", "-w", "4"], cores: 2).Variables["DOTNET_GCHeapCount"]);
        Assert.False(Budget(["--max-worker-memory", "512MB", "--gc", "workstation"]).Variables.ContainsKey("DOTNET_GCHeapCount"));
    }

    [Theory]
    [InlineData("DOTNET_GCHeapHardLimit")]
    [InlineData("DOTNET_GCHeapHardLimitPercent")]
    [InlineData("COMPlus_GCHeapHardLimit")]
    [InlineData("DOTNET_GCHeapHardLimitSOH")]
    public void A_limit_the_user_set_in_the_environment_is_kept(string name)
    {
        var (variables, summary) = Budget(["--max-worker-memory", "512MB"], new() { [name] = "20000000" });
        Assert.Empty(variables);
        Assert.Contains("kept the app's own GC heap hard limit", summary);
    }

    [Fact]
    public void Settings_in_the_apps_runtimeconfig_are_kept()
    {
        var (variables, _) = Budget(["--max-worker-memory", "512MB", "--gc", "server", "-w", "2"],
            runtimeConfig: ["System.GC.HeapHardLimitPercent", "System.GC.HeapCount", "System.GC.Server"]);
        Assert.Equal(new Dictionary<string, string> { ["DOTNET_GCNoAffinitize"] = "1" }, variables);
    }

    [Fact]
    public void The_runtimeconfig_properties_are_read()
    {
        using var dir = new TempDir();
        var path = dir.File("App.runtimeconfig.json", """{ "runtimeOptions": { "tfm": "net10.0", "configProperties": { "System.GC.HeapHardLimit": 209715200, "System.GC.Server": true } } }""");
        Assert.Equal(["System.GC.HeapHardLimit", "System.GC.Server"], GcBudget.ReadConfigProperties(path));
        Assert.Empty(GcBudget.ReadConfigProperties(Path.Combine(dir.Path, "missing.json")));
    }
}
