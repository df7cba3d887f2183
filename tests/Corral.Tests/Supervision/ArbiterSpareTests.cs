using Corral.Agent.Contract;
using Corral.Supervision;


namespace Corral.Tests;

/// <summary>--spare-workers: warm idle workers that the arbiter promotes (SIGUSR2) the moment a serving one is missing.</summary>
public class ArbiterSpareTests
{
    private static readonly TimeSpan S = TimeSpan.FromSeconds(1);

    /// <summary>Started, the serving workers ready, then the spares they let boot ready too.</summary>
    private static ArbiterRig BootedWithSpares(params string[] argv)
    {
        var rig = new ArbiterRig(argv).Booted();
        rig.ReadyAll();
        Assert.Equal(rig.Config.SpareWorkers, Spares(rig).Length);
        Assert.All(Spares(rig), pid => Assert.Equal(WorkerState.Ready, rig.Worker(pid).State));
        return rig;
    }

    private static int[] Spares(ArbiterRig rig) => [.. rig.Workers.Where(w => w.Spare && w.IsServing).Select(w => w.Pid).Order()];

    private static int[] Serving(ArbiterRig rig) => [.. rig.Workers.Where(w => !w.Spare && w.IsServing).Select(w => w.Pid).Order()];

    [Fact]
    public void Spares_boot_once_the_serving_workers_are_ready_and_are_never_counted_as_serving()
    {
        var rig = new ArbiterRig("-w", "2", "--spare-workers", "1");
        rig.Arbiter.Start();
        Assert.Equal(2, rig.Host.Spawned.Count);
        Assert.Empty(rig.Host.SpawnedSpares); // serving first

        rig.Ready(rig.Pids[0]);
        Assert.Empty(rig.Host.SpawnedSpares); // one serving worker still boots
        rig.Ready(rig.Pids[1]);
        var spare = Assert.Single(rig.Host.SpawnedSpares);
        Assert.True(rig.Log.Has("info", $"Booting spare worker with pid: {spare}"));

        rig.Ready(spare);
        Assert.True(rig.Worker(spare).Spare);
        Assert.Equal(2, rig.Arbiter.DesiredWorkers);
        Assert.Equal(2, Serving(rig).Length);
        Assert.Empty(rig.Host.SignalsTo(spare)); // not promoted while nothing is missing
        rig.Run(5 * S, eachStep: rig.HeartbeatAll);
        Assert.Equal(3, rig.Host.Spawned.Count);
        Assert.Empty(rig.Host.Sent);
    }

    [Fact]
    public void A_killed_worker_is_replaced_by_the_spare_in_the_same_event_and_a_new_spare_boots()
    {
        var rig = BootedWithSpares("-w", "2", "--spare-workers", "1");
        var victim = Serving(rig)[0];
        var spare = Spares(rig)[0];
        var spawned = rig.Host.Spawned.Count;

        rig.Exit(victim, 128 + Signals.KILL);

        Assert.Equal([Signals.USR2], rig.Host.SignalsTo(spare));
        Assert.False(rig.Worker(spare).Spare);
        Assert.NotNull(rig.Worker(spare).PromotedAt);
        Assert.Contains(spare, Serving(rig));
        Assert.Equal(2, Serving(rig).Length);
        Assert.True(rig.Log.Has("info", $"Promoting spare worker (pid:{spare}): it replaces worker (pid:{victim}), which exited"));
        // One spawn in that event, a spare: no serving worker waits for a boot.
        Assert.Equal(spawned + 1, rig.Host.Spawned.Count);
        Assert.Equal(rig.Host.Spawned[^1], rig.Host.SpawnedSpares[^1]);
        Assert.Equal([rig.Host.Spawned[^1]], Spares(rig));
        Assert.Equal(WorkerState.Booting, rig.Worker(rig.Host.Spawned[^1]).State);
    }

    [Fact]
    public void Without_a_ready_spare_a_missing_worker_boots_as_before()
    {
        var rig = new ArbiterRig("-w", "1", "--spare-workers", "1").Booted();
        var spare = Assert.Single(rig.Host.SpawnedSpares); // still booting
        var victim = Serving(rig)[0];

        rig.Exit(victim, 1);

        Assert.Empty(rig.Host.SignalsTo(spare));
        Assert.True(rig.Worker(spare).Spare);
        var replacement = rig.Host.Spawned[^1];
        Assert.DoesNotContain(replacement, rig.Host.SpawnedSpares);
        Assert.Equal([replacement], Serving(rig));
    }

    [Fact]
    public void A_recycled_worker_hands_over_to_the_spare_and_drains_at_once()
    {
        var rig = BootedWithSpares("-w", "2", "--spare-workers", "1", "--max-requests", "100");
        var retiree = Serving(rig)[0];
        var spare = Spares(rig)[0];

        rig.Recycle(retiree);

        Assert.Equal([Signals.USR2], rig.Host.SignalsTo(spare));
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(retiree)); // no successor to wait for
        Assert.Equal(StopReason.MaxRequests, rig.Worker(retiree).StopReason);
        Assert.True(rig.Log.Has("info", $"Promoting spare worker (pid:{spare}): it replaces worker (pid:{retiree}), recycled for --max-requests, which drains now"));
        Assert.Equal(2, Serving(rig).Length);
        Assert.Contains(spare, Serving(rig));
        Assert.Single(Spares(rig)); // the next spare boots
        Assert.Equal(WorkerState.Booting, rig.Worker(Spares(rig)[0]).State);
    }

    [Fact]
    public void A_second_recycle_waits_for_the_next_spare_instead_of_booting_beside_it()
    {
        var rig = BootedWithSpares("-w", "2", "--spare-workers", "1", "--max-requests", "100");
        var (first, second) = (Serving(rig)[0], Serving(rig)[1]);
        rig.Recycle(first);
        var nextSpare = Spares(rig)[0];
        var spawned = rig.Host.Spawned.Count;

        rig.Recycle(second);

        // One boot at a time: the second waits (and serves) while the new spare boots.
        Assert.Equal(spawned, rig.Host.Spawned.Count);
        Assert.Empty(rig.Host.SignalsTo(second));
        Assert.True(rig.Log.Has("info", $"Worker (pid:{second}) reached --max-requests: it serves on until its turn to be recycled"));

        rig.Ready(nextSpare);

        Assert.Equal([Signals.USR2], rig.Host.SignalsTo(nextSpare));
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(second));
        Assert.Equal(spawned + 1, rig.Host.Spawned.Count);
        Assert.Equal(rig.Host.Spawned[^1], rig.Host.SpawnedSpares[^1]);
    }

    [Fact]
    public void A_timed_out_worker_is_replaced_by_the_spare_at_that_tick()
    {
        var rig = BootedWithSpares("-w", "1", "--spare-workers", "1", "--timeout", "10");
        var stuck = Serving(rig)[0];
        var spare = Spares(rig)[0];

        // Everyone heartbeats but the stuck worker.
        rig.Run(11 * S, eachStep: () => rig.Heartbeat(spare));

        Assert.True(rig.Log.Has("critical", $"WORKER TIMEOUT (pid:{stuck})"));
        Assert.Contains(Signals.USR2, rig.Host.SignalsTo(spare));
        Assert.Equal([spare], Serving(rig));
        Assert.True(rig.Log.Has("info", $"Promoting spare worker (pid:{spare}): it replaces worker (pid:{stuck}), which timed out"));
    }

    [Fact]
    public void TTIN_promotes_a_spare_and_TTOU_never_stops_one()
    {
        var rig = BootedWithSpares("-w", "2", "--spare-workers", "1");
        var spare = Spares(rig)[0];

        rig.Signal(Signals.TTIN);

        Assert.Equal(3, rig.Arbiter.DesiredWorkers);
        Assert.Equal([Signals.USR2], rig.Host.SignalsTo(spare));
        Assert.Equal(3, Serving(rig).Length);
        Assert.True(rig.Log.Has("info", $"Promoting spare worker (pid:{spare}): the wanted number of workers grew to 3"));
        var nextSpare = Assert.Single(Spares(rig));
        rig.Ready(nextSpare);

        rig.Signal(Signals.TTOU);
        rig.Signal(Signals.TTOU);

        Assert.Equal(1, rig.Arbiter.DesiredWorkers);
        Assert.Single(Serving(rig));
        Assert.Empty(rig.Host.SignalsTo(nextSpare));
        Assert.Equal([nextSpare], Spares(rig));
    }

    [Fact]
    public void A_spare_that_dies_is_simply_replaced_by_another_spare()
    {
        var rig = BootedWithSpares("-w", "1", "--spare-workers", "1");
        var serving = Serving(rig)[0];
        var spare = Spares(rig)[0];

        rig.Exit(spare, 128 + Signals.KILL);

        Assert.Equal([serving], Serving(rig));
        Assert.Empty(rig.Host.SignalsTo(serving));
        Assert.Equal(rig.Host.Spawned[^1], Assert.Single(Spares(rig)));
        Assert.Equal(2, rig.Host.SpawnedSpares.Count);
        Assert.False(rig.Log.Has("info", "Promoting spare worker"));
    }

    [Fact]
    public void A_spare_above_its_memory_limit_is_stopped_and_another_boots()
    {
        var rig = BootedWithSpares("-w", "1", "--spare-workers", "1", "--max-worker-memory", "200MB");
        var serving = Serving(rig)[0];
        var spare = Spares(rig)[0];

        rig.Arbiter.OnMessage(spare, new Message(MessageKind.Recycle, Text: Protocol.Memory));

        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(spare));
        Assert.Equal(StopReason.Memory, rig.Worker(spare).StopReason);
        Assert.Empty(rig.Host.SignalsTo(serving));
        Assert.Equal([serving], Serving(rig));
        Assert.Equal(rig.Host.Spawned[^1], Assert.Single(Spares(rig)));
        Assert.True(rig.Log.Has("warning", $"Spare worker (pid:{spare}) is above --max-worker-memory"));
    }

    [Fact]
    public void A_reload_replaces_the_spares_after_the_new_serving_workers_are_ready()
    {
        var rig = BootedWithSpares("-w", "2", "--spare-workers", "1");
        var oldServing = Serving(rig);
        var oldSpare = Spares(rig)[0];
        rig.NextConfig = rig.Config;

        rig.Signal(Signals.HUP);

        var newServing = rig.Host.Spawned.TakeLast(2).ToArray();
        Assert.DoesNotContain(newServing[0], rig.Host.SpawnedSpares);
        Assert.DoesNotContain(newServing[1], rig.Host.SpawnedSpares);
        Assert.Empty(rig.Host.SignalsTo(oldSpare)); // not promoted into the new generation
        var spawned = rig.Host.Spawned.Count;

        rig.Ready(newServing[0]);
        Assert.Equal(spawned, rig.Host.Spawned.Count); // serving first
        rig.Ready(newServing[1]);

        Assert.All(oldServing, pid => Assert.Equal([Signals.TERM], rig.Host.SignalsTo(pid)));
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(oldSpare));
        Assert.Equal(StopReason.Reload, rig.Worker(oldSpare).StopReason);
        var newSpare = rig.Host.Spawned[^1];
        Assert.Equal(spawned + 1, rig.Host.Spawned.Count);
        Assert.Equal(newSpare, rig.Host.SpawnedSpares[^1]);
        Assert.Equal(1, rig.Worker(newSpare).Generation);
        Assert.Equal([.. newServing.Order()], Serving(rig));
    }

    [Fact]
    public void A_reload_to_fewer_spares_stops_the_surplus()
    {
        var rig = BootedWithSpares("-w", "1", "--spare-workers", "2");
        rig.NextConfig = Settings.Ok("-w", "1", "--spare-workers", "0", "App.dll");
        rig.Signal(Signals.HUP);
        rig.ReadyAll();

        Assert.Empty(Spares(rig));
        Assert.Equal(2, rig.Host.SpawnedSpares.Count);
        Assert.All(rig.Host.SpawnedSpares, pid => Assert.Equal([Signals.TERM], rig.Host.SignalsTo(pid)));
    }

    [Fact]
    public void A_spare_is_not_recycled_for_its_age_and_a_promoted_one_ages_from_its_promotion()
    {
        var rig = BootedWithSpares("-w", "1", "--spare-workers", "1", "--max-worker-lifetime", "60", "--timeout", "0");
        var spare = Spares(rig)[0];
        rig.Run(50 * S);
        // The serving worker was due first; its place goes to the spare, aged 50 s but promoted now.
        var first = rig.Host.Spawned[0];
        Assert.Empty(rig.Host.SignalsTo(first));
        rig.Run(11 * S);
        Assert.Contains(Signals.TERM, rig.Host.SignalsTo(first));
        Assert.Equal([Signals.USR2], rig.Host.SignalsTo(spare));
        var promotedAt = rig.Worker(spare).PromotedAt!.Value;
        Assert.Equal(promotedAt + 60 * S, rig.Worker(spare).LifetimeDueAt);
        rig.ReadyAll();
        // The new spare is older than nothing and idle: not due. The promoted one serves another 60 s.
        rig.Run(50 * S);
        Assert.Equal([Signals.USR2], rig.Host.SignalsTo(spare));
    }

    [Fact]
    public void PromoteSpare_takes_the_oldest_ready_spare_of_the_current_generation()
    {
        var rig = BootedWithSpares("-w", "1", "--spare-workers", "2");
        var (older, younger) = (Spares(rig)[0], Spares(rig)[1]);

        Assert.True(rig.Arbiter.PromoteSpare("scaling up"));

        Assert.Equal([Signals.USR2], rig.Host.SignalsTo(older));
        Assert.Empty(rig.Host.SignalsTo(younger));
        Assert.True(rig.Log.Has("info", $"Promoting spare worker (pid:{older}): scaling up"));
        Assert.True(rig.Arbiter.PromoteSpare("scaling up"));
        Assert.False(rig.Arbiter.PromoteSpare("scaling up")); // none left ready
    }
}

/// <summary>What `corral ctl status` and /metrics say of spares.</summary>
public class SpareStatusTests
{
    [Fact]
    public async Task Status_and_metrics_show_ready_spares_apart_from_the_serving_workers()
    {
        var rig = new ArbiterRig("-w", "2", "--spare-workers", "2").Booted();
        rig.Ready(rig.Host.SpawnedSpares[0]); // the other spare still boots
        var o = new Corral.Metrics.Observatory(new Corral.Metrics.ListenQueue([]), new Corral.Metrics.MasterMetrics());
        var snapshot = o.Snapshot(rig.Arbiter);

        var status = Corral.Control.CtlCommand.FormatStatus(snapshot).Split('\n');
        Assert.Contains(" workers 2 ready / 2 wanted + 1 spare (1 booting)  requests 0", status[0]);
        Assert.Single(status, l => l.StartsWith($"{rig.Host.SpawnedSpares[0],-8} spare ", StringComparison.Ordinal));
        Assert.Single(status, l => l.StartsWith($"{rig.Host.SpawnedSpares[1],-8} booting (spare) ", StringComparison.Ordinal));
        o.Metrics.SetGauges(snapshot);
        var lines = (await o.Metrics.ExportAsync(CancellationToken.None)).Split('\n');
        Assert.Contains("corral_workers{state=\"spare\"} 1", lines);
        Assert.Contains("corral_workers{state=\"ready\"} 2", lines);
        Assert.Contains("corral_workers{state=\"booting\"} 1", lines);
    }
}
