using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;
using Corral.IntegrationTests.Observability;

namespace Corral.IntegrationTests;

/// <summary>
/// --max-worker-lifetime with real workers under a looping client: workers are recycled by age, one at a
/// time, with no failed request, and `corral ctl status` says why each past worker went.
/// </summary>
public sealed partial class LifetimeRecyclingTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task WorkersAreRecycledByAgeOneAtATimeWithoutAFailedRequest()
    {
        var apps = await TestApps.GetAsync();
        var socket = Path.Combine(_dir, "corral.ctl");
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-w", "3", "--max-worker-lifetime", "4", "--max-worker-lifetime-jitter", "2",
            "--control-socket", socket, "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var first = await corral.WaitForWorkersAsync(3, Boot);

        await using (var loop = new Http.Loop(port, "/pid", concurrency: 4))
        {
            await Task.Delay(TimeSpan.FromSeconds(20));
            Assert.Empty(loop.Failures);
            Assert.True(loop.Succeeded > 100, $"only {loop.Succeeded} requests succeeded");
        }

        var lines = corral.Lines;
        var recycles = lines.Count(l => RetireLine().IsMatch(l));
        Assert.True(recycles >= 3, $"{recycles} lifetime recycles in 20 s:\n{corral.Output}");
        Assert.DoesNotContain(lines, l => l.Contains("[ERROR]", StringComparison.Ordinal) || l.Contains("[CRITICAL]", StringComparison.Ordinal));

        // Never two successors booting at once: after the first three are ready, each boot is a
        // recycle's successor, and it is ready before the next one starts.
        var booting = new HashSet<int>();
        var ready = 0;
        foreach (var line in lines)
        {
            if (BootLine().Match(line) is { Success: true } b)
            {
                booting.Add(int.Parse(b.Groups[1].Value, CultureInfo.InvariantCulture));
                Assert.True(ready < 3 || booting.Count <= 1, $"two successors boot at once: {line}\n{corral.Output}");
            }
            else if (ReadyLine().Match(line) is { Success: true } r && booting.Remove(int.Parse(r.Groups[1].Value, CultureInfo.InvariantCulture)))
            {
                ready++;
            }
        }

        var (exit, json, err) = await Observe.CtlAsync("--control-socket", socket, "status", "--json");
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(json);
        var exits = doc.RootElement.GetProperty("recent_exits").EnumerateArray().ToList();
        Assert.Contains(exits, e => e.GetProperty("reason").GetString() == "lifetime" && first.Contains(e.GetProperty("pid").GetInt32()));
        Assert.All(doc.RootElement.GetProperty("workers").EnumerateArray(), w => Assert.InRange(w.GetProperty("lifetime_seconds").GetDouble(), 4, 6));

        var (textExit, text, textErr) = await Observe.CtlAsync("--control-socket", socket, "status");
        Assert.True(textExit == 0, textErr);
        Assert.Contains("recent exits (newest first)", text);
        Assert.Matches(@"\n\d+ +\d+ +lifetime ", text);
    }

    [GeneratedRegex(@"Worker \(pid:\d+\) reached --max-worker-lifetime \([\d.]+ s\): starting its successor, then it drains")]
    private static partial Regex RetireLine();

    [GeneratedRegex(@"Booting worker with pid: (\d+)")]
    private static partial Regex BootLine();

    [GeneratedRegex(@"Worker ready \(pid: (\d+)\)")]
    private static partial Regex ReadyLine();
}
