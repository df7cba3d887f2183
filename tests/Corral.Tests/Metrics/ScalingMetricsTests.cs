using Corral.Control;
using Corral.Metrics;
using Corral.Supervision;


namespace Corral.Tests;

/// <summary>-w MIN:MAX in the metrics and `corral ctl status`: wanted, least and most workers, scale events by direction.</summary>
public sealed class ScalingMetricsTests
{
    [Fact]
    public async Task Scale_events_and_bounds_reach_the_gauges_the_counter_and_the_status_table()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:3").Booted();
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        o.AfterEvent(rig.Arbiter);
        var idle = await o.Metrics.ExportAsync(CancellationToken.None);
        Assert.Contains("corral_scale_events_total{direction=\"up\"} 0", idle);
        Assert.Contains("corral_scale_events_total{direction=\"down\"} 0", idle);

        for (var i = 0; i < 4; i++)
        {
            rig.Clock.Advance(TimeSpan.FromMilliseconds(500));
            rig.Arbiter.OnLoad(7);
        }
        o.AfterEvent(rig.Arbiter);
        var snapshot = o.Snapshot(rig.Arbiter);
        o.Metrics.SetGauges(snapshot);
        var text = await o.Metrics.ExportAsync(CancellationToken.None);

        Assert.Contains("corral_workers_desired 2", text);
        Assert.Contains("corral_workers_min 1", text);
        Assert.Contains("corral_workers_max 3", text);
        Assert.Contains("corral_scale_events_total{direction=\"up\"} 1", text);
        Assert.Contains("corral_scale_events_total{direction=\"down\"} 0", text);

        var status = CtlCommand.FormatStatus(MasterSnapshot.FromJson(snapshot.ToJson())!);
        Assert.Contains("1 ready / 2 wanted (-w 1:3, scaled up 1 / down 0 times)", status);
        Assert.Contains("last scale event: Scaling up to 2 workers: 7 connections queued for 1.0 s", status);
    }

    [Fact]
    public async Task A_fixed_count_shows_its_count_as_both_bounds_and_no_range_in_the_status()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        var snapshot = o.Snapshot(rig.Arbiter);
        o.Metrics.SetGauges(snapshot);
        var text = await o.Metrics.ExportAsync(CancellationToken.None);

        Assert.Contains("corral_workers_min 2", text);
        Assert.Contains("corral_workers_max 2", text);
        Assert.Contains("2 ready / 2 wanted  requests", CtlCommand.FormatStatus(snapshot));
    }
}
