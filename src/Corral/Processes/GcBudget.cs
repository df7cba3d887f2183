using System.Globalization;
using System.Text.Json;
using Corral.Settings;

namespace Corral.Processes;

/// <summary>
/// The GC settings that keep a worker within --max-worker-memory, given to each worker's environment
/// while a limit is set, unless the user chose them already (in the environment, or in the app's
/// runtimeconfig.json):
/// <list type="bullet">
/// <item>DOTNET_GCHeapHardLimit at the hard ceiling (--max-worker-memory-ceiling): the GC collects harder
/// as its heap nears it, and the heap alone can never pass what the master kills at.</item>
/// <item>With --gc server: DOTNET_GCHeapCount = max(1, cores / workers) and DOTNET_GCNoAffinitize=1, so
/// that N workers on one host do not each make a heap per core, pinned to the same cores
/// (dotnet/runtime#75538: commit from 0.6 GB to 10.5 GB per process without it).</item>
/// </list>
/// The runtime reads these variables' numbers as hexadecimal.
/// </summary>
public static class GcBudget
{
    public const string HeapHardLimit = "DOTNET_GCHeapHardLimit";
    public const string HeapCount = "DOTNET_GCHeapCount";
    public const string NoAffinitize = "DOTNET_GCNoAffinitize";

    /// <summary>The variables to set (none without a limit), and one line that says what, for the log.</summary>
    /// <param name="environment">The worker's environment so far (the master's, with --env applied).</param>
    /// <param name="runtimeConfigProperties">The app's runtimeconfig.json configProperties names (<see cref="ReadConfigProperties"/>).</param>
    public static (IReadOnlyDictionary<string, string> Variables, string? Summary) For(
        CorralConfig config, IDictionary<string, string?> environment, IReadOnlyCollection<string> runtimeConfigProperties, int cores)
    {
        var set = new Dictionary<string, string>();
        var ceiling = config.MaxWorkerMemoryCeiling;
        if (ceiling <= 0)
        {
            return (set, null);
        }
        var parts = new List<string>();
        var kept = new List<string>();
        if (UserSet(environment, "GCHeapHardLimit", prefixOnly: true) || runtimeConfigProperties.Any(p => p.StartsWith("System.GC.HeapHardLimit", StringComparison.OrdinalIgnoreCase)))
        {
            kept.Add("the app's own GC heap hard limit");
        }
        else
        {
            set[HeapHardLimit] = ceiling.ToString("x", CultureInfo.InvariantCulture);
            parts.Add($"GC heap hard limit {ByteSize.Mib(ceiling)} ({HeapHardLimit}=0x{set[HeapHardLimit]})");
        }
        if (config.Gc == "server")
        {
            var heaps = Math.Max(1, cores / Math.Max(1, config.WorkerRange.Max));
            if (UserSet(environment, "GCHeapCount", prefixOnly: false) || runtimeConfigProperties.Contains("System.GC.HeapCount", StringComparer.OrdinalIgnoreCase))
            {
                kept.Add("the app's own GC heap count");
            }
            else
            {
                set[HeapCount] = heaps.ToString("x", CultureInfo.InvariantCulture);
                parts.Add($"{heaps} server GC heap(s) ({cores} cores / {config.WorkerRange.Max} workers)");
            }
            if (UserSet(environment, "GCNoAffinitize", prefixOnly: false) || runtimeConfigProperties.Contains("System.GC.NoAffinitize", StringComparer.OrdinalIgnoreCase))
            {
                kept.Add("the app's own GC affinity");
            }
            else
            {
                set[NoAffinitize] = "1";
                parts.Add("heaps not pinned to cores");
            }
        }
        var summary = "Workers' GC budget for --max-worker-memory: "
            + (parts.Count > 0 ? string.Join(", ", parts) : "nothing set")
            + (kept.Count > 0 ? "; kept " + string.Join(", ", kept) : "");
        return (set, summary);
    }

    /// <summary>The environment sets the GC knob NAME (DOTNET_ or the older COMPlus_ prefix; with <paramref name="prefixOnly"/>, any name that starts with it: GCHeapHardLimitPercent, ...).</summary>
    private static bool UserSet(IDictionary<string, string?> environment, string name, bool prefixOnly) =>
        environment.Any(kv => !string.IsNullOrEmpty(kv.Value) && (Matches(kv.Key, "DOTNET_" + name, prefixOnly) || Matches(kv.Key, "COMPlus_" + name, prefixOnly)));

    private static bool Matches(string key, string name, bool prefixOnly) =>
        prefixOnly ? key.StartsWith(name, StringComparison.OrdinalIgnoreCase) : key.Equals(name, StringComparison.OrdinalIgnoreCase);

    /// <summary>The names under runtimeOptions.configProperties of a runtimeconfig.json; none if it cannot be read.</summary>
    public static IReadOnlyCollection<string> ReadConfigProperties(string runtimeConfigPath)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(runtimeConfigPath), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (doc.RootElement.TryGetProperty("runtimeOptions", out var options) && options.ValueKind == JsonValueKind.Object
                && options.TryGetProperty("configProperties", out var properties) && properties.ValueKind == JsonValueKind.Object)
            {
                return [.. properties.EnumerateObject().Select(p => p.Name)];
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
        }
        return [];
    }
}
