using System.Globalization;
using Corral.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.IntegrationTests;

/// <summary>
/// #18: --max-worker-memory with a leaking app (TestApp's /leak endpoints). An idle TestApp worker has a
/// PSS of about 25 MiB here (measured: two workers and the master share the runtime's pages), so a limit
/// of 100 MiB leaves about 75 MiB to leak.
/// </summary>
public sealed class MemoryRecyclingTests(ITestOutputHelper output)
{
    private const long Mi = 1L << 20;
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task LeakingWorkersAreReplacedBeforeTheCeilingAndTheClientSeesNoError()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-w", "2", "--max-worker-memory", "100MB", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, Boot);
        Assert.Equal(1, corral.CountLines(@"\[INFO\] Workers' GC budget for --max-worker-memory: GC heap hard limit 150 MiB \(DOTNET_GCHeapHardLimit=0x9600000\)"));

        using var stop = new CancellationTokenSource();
        var sampler = SampleWorkersPssAsync(corral.Pid, stop.Token);
        // About 11 MB/s of leak in all: 256 KB a request, two clients, 40 ms apart.
        var failures = new List<string>();
        var ok = 0;
        var clients = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var (status, _) = await Http.GetAsync(port, "/leak?kb=256");
                    if (status == 200)
                    {
                        Interlocked.Increment(ref ok);
                    }
                    else
                    {
                        lock (failures)
                        {
                            failures.Add($"HTTP {status}");
                        }
                    }
                }
                catch (Exception e)
                {
                    lock (failures)
                    {
                        failures.Add(e.GetType().Name + ": " + e.Message);
                    }
                }
                await Task.Delay(40, CancellationToken.None);
            }
        })).ToList();

        await Task.Delay(TimeSpan.FromSeconds(25));
        await stop.CancelAsync();
        await Task.WhenAll(clients);
        var maxPss = await sampler;

        output.WriteLine($"{ok} requests, {failures.Count} failed; largest worker PSS sampled: {maxPss / (double)Mi:0.0} MiB");
        Assert.True(failures.Count == 0, $"{failures.Count} failed of {ok + failures.Count}: {string.Join("; ", failures.Take(5))}\n{corral.Output}");
        var recycled = corral.CountLines(@"\[WARNING\] Worker \(pid:\d+\) is above --max-worker-memory \(PSS [\d.]+ MiB > 100 MiB after a full GC; it takes no new connections\): starting its successor, then it drains");
        output.WriteLine($"{recycled} workers recycled for memory in 25 s");
        Assert.True(recycled >= 2, $"expected workers recycled for memory, {recycled} were ({ok} requests)\n{corral.Output}");
        // Each said so once, in its own words, with its PSS, limit and GC heap.
        Assert.Equal(recycled, corral.CountLines(@"\[WARNING\] Worker is above --max-worker-memory after a full garbage collection: PSS [\d.]+ MiB > limit 100 MiB \(GC heap [\d.]+ MiB\)"));
        Assert.Equal(0, corral.CountLines("memory ceiling"));
        Assert.True(maxPss < 150 * Mi, $"a worker's PSS reached {maxPss / Mi} MiB, past the 150 MiB ceiling");
        await corral.WaitForWorkersAsync(2, Boot);
    }

    [Fact]
    public async Task ALeakFasterThanADrainIsKilledAtTheCeilingAndOnlyItsRequestFails()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-w", "2", "--max-worker-memory", "100MB", "--max-worker-memory-ceiling", "160MB",
            "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);

        await using (var loop = new Http.Loop(port, "/", concurrency: 1))
        {
            // 32 MB/s of native memory in one request that never ends in time: the worker goes over the
            // limit (it stops accepting, its successor boots), but its drain waits for this request,
            // which passes the ceiling a few seconds later.
            var leak = Http.GetAsync(port, "/leak/fast?mb=400&step_ms=250", TimeSpan.FromSeconds(30));
            var killed = await corral.WaitForLineAsync(@"\[ERROR\] Worker \(pid:(\d+)\) is above the memory ceiling \([\d.]+ MiB > 160 MiB\): killing it", Boot);
            var pid = int.Parse(killed.Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.Contains(pid, workers);
            await Assert.ThrowsAnyAsync<Exception>(() => leak);
            await corral.WaitForWorkersAsync(2, Boot, gone: [pid]);
            var (status, body) = await Http.GetAsync(port, "/pid");
            Assert.Equal(200, status);
            Assert.NotEqual(pid, int.Parse(body, CultureInfo.InvariantCulture));
            await Task.Delay(500);
            Assert.True(loop.Failures.Count == 0, $"the other clients saw: {string.Join("; ", loop.Failures.Take(5))}\n{corral.Output}");
            Assert.True(loop.Succeeded > 0);
        }
        Assert.Equal(0, corral.CountLines("Perhaps out of memory"));
    }

    /// <summary>The largest PSS any child of the master had, sampled every 100 ms until cancelled.</summary>
    private static async Task<long> SampleWorkersPssAsync(int master, CancellationToken ct)
    {
        long max = 0;
        while (!ct.IsCancellationRequested)
        {
            foreach (var pid in ProcessTree.Children(master))
            {
                try
                {
                    var text = await File.ReadAllTextAsync($"/proc/{pid}/smaps_rollup", CancellationToken.None);
                    var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("Pss:", StringComparison.Ordinal));
                    if (line is not null && long.TryParse(line[4..].Replace("kB", "", StringComparison.Ordinal).Trim(), CultureInfo.InvariantCulture, out var kb))
                    {
                        max = Math.Max(max, kb * 1024);
                    }
                }
                catch (IOException)
                {
                    // gone meanwhile
                }
            }
            try
            {
                await Task.Delay(100, ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        return max;
    }
}
