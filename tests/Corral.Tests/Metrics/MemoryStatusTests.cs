using Corral.Control;
using Corral.Metrics;

namespace Corral.Tests;

/// <summary>--max-worker-memory in `corral ctl status` and the metrics: each worker's PSS against the limit.</summary>
public class MemoryStatusTests
{
    private const long Mi = 1L << 20;

    [Fact]
    public async Task The_limit_and_each_workers_share_of_it_show_in_ctl_status_and_the_gauges()
    {
        var rig = new ArbiterRig("-w", "2", "--max-worker-memory", "200MB").Booted();
        var (a, b) = (rig.Pids[0], rig.Pids[1]);
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        o.OnStats(a, """{"requests":{},"bucket_counts":[],"bucket_sums":[],"inflight":0,"gc_heap":1000,"rss":83886080,"pss":52428800}""");
        rig.Arbiter.OnMemory(a, 100 * Mi); // the master's reading, fresher than the worker's report
        rig.Arbiter.OnMemory(b, 150 * Mi);

        var snapshot = MasterSnapshot.FromJson(o.Snapshot(rig.Arbiter).ToJson())!;

        Assert.Equal(200 * Mi, snapshot.WorkerMemoryLimit);
        Assert.Equal(300 * Mi, snapshot.WorkerMemoryCeiling);
        Assert.Equal(100 * Mi, snapshot.Workers.Single(w => w.Pid == a).Pss);
        var status = CtlCommand.FormatStatus(snapshot).Split('\n');
        Assert.Contains($"memory limit 200.0M PSS per worker, ceiling 300.0M: {a} 50%, {b} 75%", status);
        o.Metrics.SetGauges(snapshot);
        var text = await o.Metrics.ExportAsync(CancellationToken.None);
        Assert.Contains("corral_worker_memory_limit_bytes 209715200", text);
        Assert.Contains("corral_worker_memory_ceiling_bytes 314572800", text);
    }

    [Fact]
    public async Task Without_a_limit_there_is_no_line_and_no_gauge()
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        var snapshot = o.Snapshot(rig.Arbiter);
        Assert.DoesNotContain("memory limit", CtlCommand.FormatStatus(snapshot));
        o.Metrics.SetGauges(snapshot);
        var lines = (await o.Metrics.ExportAsync(CancellationToken.None)).Split('\n');
        Assert.DoesNotContain(lines, l => l.StartsWith("corral_worker_memory_", StringComparison.Ordinal)); // no sample, not a false 0
    }
}
