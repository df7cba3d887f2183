using Corral.Agent.Contract;
using Corral.Control;
using Corral.Metrics;
using Corral.Supervision;


namespace Corral.Tests;

/// <summary>
/// --max-worker-lifetime, the one-recycle-at-a-time rule for every retirement, and the CPU cap on
/// recycling boots (--max-recycle-cpu): the arbiter's decisions with the fake clock.
/// </summary>
public class LifetimeRecyclingTests
{
    private static readonly TimeSpan S = TimeSpan.FromSeconds(1);

    private static ArbiterRig Rig(double random, int cores, params string[] argv)
    {
        var rig = new ArbiterRig(argv);
        rig.Arbiter.Random = () => random;
        rig.Arbiter.Cores = cores;
        return rig.Booted();
    }

    private static int Retired(ArbiterRig rig) =>
        rig.Log.Lines.Count(l => l.Text.Contains("reached --max-worker-lifetime", StringComparison.Ordinal));

    /// <summary>Successors become ready <paramref name="bootTime"/> after they spawn; workers told to stop exit at once.</summary>
    private static void Simulate(ArbiterRig rig, TimeSpan total, TimeSpan bootTime, Action? eachStep = null) =>
        rig.Run(total, eachStep: () =>
        {
            foreach (var w in rig.Workers.Where(w => w.State == WorkerState.Booting && rig.Clock.GetUtcNow() - w.SpawnedAt >= bootTime).ToList())
            {
                rig.Ready(w.Pid);
            }
            rig.ExitSignalled();
            AssertNoStorm(rig);
            eachStep?.Invoke();
        });

    /// <summary>At most one retiring worker is being replaced, and at most one worker boots while one is.</summary>
    private static void AssertNoStorm(ArbiterRig rig)
    {
        var replacing = rig.Workers.Count(w => w.IsServing && w.Replacing);
        Assert.InRange(replacing, 0, 1);
        if (replacing == 1)
        {
            Assert.InRange(rig.Booting.Length, 0, 1);
        }
    }

    [Fact]
    public void A_worker_past_its_lifetime_gets_its_successor_first_then_drains()
    {
        var rig = Rig(0, 2, "-w", "1", "--max-worker-lifetime", "10");
        var old = rig.Pids[0];
        Assert.Equal(rig.Clock.GetUtcNow() + 10 * S, rig.Worker(old).LifetimeDueAt);

        rig.Tick(9.9 * S);
        Assert.Single(rig.Host.Spawned);

        rig.Tick(0.2 * S);
        Assert.True(rig.Log.Has("info", $"Worker (pid:{old}) reached --max-worker-lifetime (10 s): starting its successor, then it drains"));
        Assert.Equal(2, rig.Host.Spawned.Count);
        Assert.Equal(WorkerState.Ready, rig.Worker(old).State); // serves until its successor is ready
        Assert.Empty(rig.Host.SignalsTo(old));

        rig.ReadyAll();
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(old));
        Assert.Equal(StopReason.Lifetime, rig.Worker(old).StopReason);
        rig.ExitSignalled();
        Assert.Equal(StopReason.Lifetime, rig.Arbiter.Exits.Single(e => e.Pid == old).RetireReason);
    }

    [Fact]
    public void The_jitter_adds_a_random_share_of_itself_to_each_lifetime()
    {
        var rig = Rig(0.5, 2, "-w", "2", "--max-worker-lifetime", "10", "--max-worker-lifetime-jitter", "4");
        Assert.All(rig.Workers, w => Assert.Equal(12 * S, w.Lifetime));
        rig.Tick(11.9 * S);
        Assert.Equal(0, Retired(rig));
        rig.Tick(0.2 * S);
        Assert.True(rig.Log.Has("info", "reached --max-worker-lifetime (12 s)"));
    }

    [Fact]
    public void No_lifetime_means_no_age_recycling()
    {
        var rig = Rig(0, 2, "-w", "2", "-t", "0");
        Assert.All(rig.Workers, w => Assert.Null(w.LifetimeDueAt));
        rig.Run(100 * S, S);
        Assert.Equal(2, rig.Host.Spawned.Count);
    }

    [Fact]
    public void Workers_due_together_are_recycled_one_after_another()
    {
        var rig = Rig(0, 64, "-w", "3", "--max-worker-lifetime", "10");
        var first = rig.Pids;
        rig.Tick(10.1 * S);
        Assert.Equal(1, Retired(rig));
        Assert.Equal(4, rig.Host.Spawned.Count);

        // Its successor takes a while: the others are due but wait, serving.
        rig.Run(3 * S);
        Assert.Equal(1, Retired(rig));
        Assert.Equal(4, rig.Host.Spawned.Count);
        Assert.Equal(3, rig.Workers.Count(w => first.Contains(w.Pid) && w.State == WorkerState.Ready));

        Simulate(rig, 6 * S, bootTime: S);
        Assert.All(first, pid => Assert.DoesNotContain(pid, rig.Pids));
        Assert.Equal(3, Retired(rig));
        var spawns = rig.Host.SpawnTimes.Skip(3).ToList();
        Assert.All(spawns.Zip(spawns.Skip(1)), p => Assert.True(p.Second - p.First >= S, $"two recycles {p.Second - p.First} apart"));
    }

    [Fact]
    public void A_max_requests_recycle_waits_its_turn_serving_while_another_successor_boots()
    {
        var rig = Rig(0, 64, "-w", "3", "--max-worker-lifetime", "10", "--max-worker-lifetime-jitter", "0");
        var (aged, asks) = (rig.Pids[0], rig.Pids[1]);
        // Only the first worker is due: the others were given longer lives.
        rig.Tick(10.1 * S);
        Assert.True(rig.Log.Has("info", $"Worker (pid:{aged}) reached --max-worker-lifetime"));

        rig.Recycle(asks);
        Assert.True(rig.Log.Has("info", $"Worker (pid:{asks}) reached --max-requests: it serves on until its turn to be recycled (one worker is recycled at a time)"));
        Assert.Equal(4, rig.Host.Spawned.Count);
        Assert.True(rig.Worker(asks).Retiring);
        Assert.False(rig.Worker(asks).Replacing);
        Assert.Equal(WorkerState.Ready, rig.Worker(asks).State);

        rig.ReadyAll(); // the aged worker's successor: it drains
        rig.ExitSignalled();
        rig.Tick(0.2 * S);
        Assert.True(rig.Log.Has("info", $"Worker (pid:{asks}): its turn to be recycled (--max-requests): starting its successor, then it drains"));
        Assert.Equal(5, rig.Host.Spawned.Count);
        rig.ReadyAll();
        Assert.Equal(StopReason.MaxRequests, rig.Worker(asks).StopReason);
    }

    [Fact]
    public void Without_another_recycle_a_max_requests_successor_boots_at_once()
    {
        var rig = Rig(0, 2, "-w", "2", "--max-requests", "10");
        var pid = rig.Pids[0];
        rig.Recycle(pid);
        Assert.True(rig.Log.Has("info", $"Worker (pid:{pid}) reached --max-requests: starting its successor, then it drains"));
        Assert.Equal(3, rig.Host.Spawned.Count);
    }

    [Fact]
    public void Two_max_requests_asks_at_once_boot_one_successor_at_a_time()
    {
        var rig = Rig(0, 2, "-w", "4", "--max-requests", "10");
        foreach (var pid in rig.Pids)
        {
            rig.Recycle(pid);
        }
        Assert.Equal(5, rig.Host.Spawned.Count);
        Simulate(rig, 10 * S, bootTime: 0.5 * S);
        Assert.Equal(8, rig.Host.Spawned.Count);
        Assert.Equal(4, rig.ReadyCount);
        Assert.All(rig.Workers, w => Assert.False(w.Retiring));
    }

    [Fact]
    public void Ttou_takes_a_worker_waiting_for_its_turn_first_and_does_not_replace_it()
    {
        var rig = Rig(0, 2, "-w", "3", "--max-requests", "10");
        var (first, waiting) = (rig.Pids[0], rig.Pids[2]);
        rig.Recycle(first);
        rig.Recycle(waiting);
        Assert.False(rig.Worker(waiting).Replacing);
        rig.Signal(Signals.TTOU);
        Assert.Equal(StopReason.ScaledDown, rig.Worker(waiting).StopReason);
        rig.ExitSignalled();
        var exit = rig.Arbiter.Exits.Single(e => e.Pid == waiting);
        Assert.Equal("scaled-down", Observatory.WhyGone(exit));
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        o.AfterEvent(rig.Arbiter);
        Assert.Equal(0, o.Snapshot(rig.Arbiter).Restarts["max-requests"]);
        Assert.Equal(WorkerState.Ready, rig.Worker(first).State); // its successor is not ready yet
    }

    [Fact]
    public void A_crash_is_replaced_at_once_even_while_a_recycle_boots()
    {
        var rig = Rig(0, 64, "-w", "3", "--max-worker-lifetime", "10");
        rig.Tick(10.1 * S);
        Assert.Equal(4, rig.Host.Spawned.Count);
        var crashing = rig.Workers.First(w => !w.Retiring && w.State == WorkerState.Ready).Pid;
        rig.Exit(crashing, 1);
        Assert.Equal(5, rig.Host.Spawned.Count);
    }

    [Fact]
    public void Lifetime_recycles_wait_for_a_reload()
    {
        var rig = Rig(0, 64, "-w", "2", "--max-worker-lifetime", "10");
        rig.Clock.Advance(9.9 * S);
        rig.NextConfig = rig.Config;
        rig.Signal(Signals.HUP);
        rig.Tick(0.5 * S); // the old ones are due, but a new generation is booting to replace them
        Assert.Equal(0, Retired(rig));
        Assert.Equal(4, rig.Host.Spawned.Count);
    }

    [Fact]
    public void Boots_above_the_cpu_cap_stretch_the_recycles_and_say_why_once()
    {
        // 3 workers, a boot costs 1 CPU-s, a lifetime of 10 s on 2 cores: 15% of the CPU, above 10%.
        var rig = Rig(0, 2, "-w", "3", "--max-worker-lifetime", "10", "--max-recycle-cpu", "10");
        foreach (var pid in rig.Pids)
        {
            rig.Arbiter.OnBootCost(pid, 1.0);
        }
        Assert.Equal(15, rig.Arbiter.LifetimeBootShare!.Value, 3);
        Assert.Equal(5 * S, rig.Arbiter.LifetimeRecycleGap);

        Simulate(rig, 40 * S, bootTime: 0.5 * S, eachStep: () =>
        {
            foreach (var w in rig.Workers.Where(w => w.State == WorkerState.Ready))
            {
                rig.Arbiter.OnBootCost(w.Pid, 1.0);
            }
        });
        var retired = rig.Host.SpawnTimes.Skip(3).ToList();
        Assert.True(retired.Count >= 5, $"{retired.Count} recycles");
        Assert.All(retired.Zip(retired.Skip(1)), p => Assert.True(p.Second - p.First >= 5 * S - TimeSpan.FromMilliseconds(1), $"recycles {p.Second - p.First} apart"));
        var stretched = rig.Log.Lines.Where(l => l.Text.StartsWith("Recycling stretched", StringComparison.Ordinal)).ToList();
        var line = Assert.Single(stretched);
        Assert.Equal("warning", line.Level);
        Assert.Equal("Recycling stretched: each boot costs ~1 CPU-s; --max-worker-lifetime 10 s with 3 workers would spend 15% of CPU on boots, "
            + "above 10% (--max-recycle-cpu, of 2 cores): one lifetime recycle every 5 s at most, so workers live longer", line.Text);
    }

    [Fact]
    public void Cheap_boots_are_not_stretched()
    {
        var rig = Rig(0, 2, "-w", "3", "--max-worker-lifetime", "10");
        foreach (var pid in rig.Pids)
        {
            rig.Arbiter.OnBootCost(pid, 0.1); // 1.5% of the CPU
        }
        Assert.Equal(TimeSpan.Zero, rig.Arbiter.LifetimeRecycleGap);
        Simulate(rig, 12 * S, bootTime: 0.3 * S);
        Assert.Equal(3, Retired(rig));
        Assert.DoesNotContain(rig.Log.Lines, l => l.Text.StartsWith("Recycling stretched", StringComparison.Ordinal));
    }

    [Fact]
    public void A_cap_of_zero_never_stretches()
    {
        var rig = Rig(0, 1, "-w", "3", "--max-worker-lifetime", "10", "--max-recycle-cpu", "0");
        rig.Arbiter.OnBootCost(rig.Pids[0], 5);
        Assert.Equal(TimeSpan.Zero, rig.Arbiter.LifetimeRecycleGap);
    }

    [Fact]
    public void The_boot_cost_is_the_median_of_the_latest_boots()
    {
        var rig = Rig(0, 2, "-w", "1");
        Assert.Null(rig.Arbiter.BootCost);
        foreach (var c in new[] { 0.5, 9.0, 0.7, double.NaN, -1 })
        {
            rig.Arbiter.OnBootCost(1, c);
        }
        Assert.Equal(0.7, rig.Arbiter.BootCost);
        for (var i = 0; i < Corral.Supervision.Arbiter.BootCostsKept; i++)
        {
            rig.Arbiter.OnBootCost(1, 0.2);
        }
        Assert.Equal(0.2, rig.Arbiter.BootCost);
    }

    [Fact]
    public void Many_workers_with_jitter_and_max_requests_never_storm()
    {
        var rig = Rig(0, 64, "-w", "4", "--max-worker-lifetime", "5", "--max-worker-lifetime-jitter", "2");
        var draws = new Random(7);
        rig.Arbiter.Random = draws.NextDouble;
        var step = 0;
        Simulate(rig, 60 * S, bootTime: 0.7 * S, eachStep: () =>
        {
            if (++step % 13 == 0 && rig.Workers.FirstOrDefault(w => w.State == WorkerState.Ready && !w.Retiring) is { } w)
            {
                rig.Recycle(w.Pid);
            }
        });
        Assert.True(Retired(rig) >= 10, $"{Retired(rig)} lifetime recycles");
        Assert.Equal(4, rig.Workers.Count(w => w.IsServing && !w.Replacing));
    }

    [Fact]
    public void Status_shows_each_workers_lifetime_and_why_past_workers_went()
    {
        var rig = Rig(0, 64, "-w", "2", "--max-worker-lifetime", "10");
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        o.AfterEvent(rig.Arbiter);
        var aged = rig.Pids[0];
        rig.Tick(10.1 * S);
        o.AfterEvent(rig.Arbiter);
        rig.ReadyAll();
        rig.ExitSignalled();
        o.AfterEvent(rig.Arbiter);
        var crashed = rig.Pids[0];
        rig.Exit(crashed, 1);
        o.AfterEvent(rig.Arbiter);

        var snapshot = MasterSnapshot.FromJson(o.Snapshot(rig.Arbiter).ToJson())!;
        Assert.Equal(["crash", "lifetime"], snapshot.RecentExits.Select(e => e.Reason));
        Assert.Equal(aged, snapshot.RecentExits[1].Pid);
        Assert.All(snapshot.Workers, w => Assert.Equal(10, w.LifetimeSeconds));
        Assert.All(snapshot.Workers, w => Assert.NotNull(w.LifetimeDueInSeconds));
        Assert.Contains("\"recent_exits\":[{\"pid\":" + crashed, snapshot.ToJson());

        var text = CtlCommand.FormatStatus(snapshot).Split('\n');
        Assert.Matches(@"^PID +STATE +AGE +DUE IN ", text.Single(l => l.StartsWith("PID ", StringComparison.Ordinal) && l.Contains("STATE", StringComparison.Ordinal)));
        Assert.Matches(@"^PID +GEN +REASON +LIVED +EXIT +AGO$", text.Single(l => l.StartsWith("PID ", StringComparison.Ordinal) && l.Contains("REASON", StringComparison.Ordinal)));
        Assert.Contains("recent exits (newest first)", text);
        Assert.Matches($@"^{aged} +0 +lifetime +\S+ +143 ", text.Single(l => l.StartsWith($"{aged} ", StringComparison.Ordinal)));
        Assert.Matches($@"^{crashed} +0 +crash ", text.Single(l => l.StartsWith($"{crashed} ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task The_metrics_show_each_workers_age_and_when_it_is_due()
    {
        var rig = Rig(0, 64, "-w", "1", "--max-worker-lifetime", "10");
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        var snapshot = o.Snapshot(rig.Arbiter);
        o.Metrics.SetGauges(snapshot);
        var text = await o.Metrics.ExportAsync(CancellationToken.None);
        var pid = rig.Pids[0];
        Assert.Contains($"corral_worker_age_seconds{{pid=\"{pid}\"}} ", text);
        Assert.Contains($"corral_worker_lifetime_due_seconds{{pid=\"{pid}\"}} ", text);

        o.Metrics.SetGauges(snapshot with { Workers = [] });
        text = await o.Metrics.ExportAsync(CancellationToken.None);
        Assert.DoesNotContain($"corral_worker_age_seconds{{pid=\"{pid}\"}}", text);
        Assert.DoesNotContain($"corral_worker_lifetime_due_seconds{{pid=\"{pid}\"}}", text);
    }

    [Theory]
    [InlineData(null, WorkerState.Booting, null, "boot-failed")]
    [InlineData(null, WorkerState.Ready, null, "crash")]
    [InlineData(StopReason.Lifetime, WorkerState.Stopping, StopReason.Lifetime, "lifetime")]
    [InlineData(StopReason.MaxRequests, WorkerState.Stopping, StopReason.MaxRequests, "max-requests")]
    [InlineData(StopReason.Memory, WorkerState.Stopping, StopReason.Memory, "memory")]
    [InlineData(StopReason.Deadline, WorkerState.Stopping, StopReason.Deadline, "deadline")]
    [InlineData(StopReason.Timeout, WorkerState.Killing, StopReason.Lifetime, "timeout")]
    [InlineData(StopReason.CtlKill, WorkerState.Stopping, null, "kill")]
    [InlineData(StopReason.MemoryCeiling, WorkerState.Killing, StopReason.Memory, "memory-ceiling")]
    [InlineData(StopReason.Reload, WorkerState.Stopping, null, "reload")]
    [InlineData(StopReason.ScaledDown, WorkerState.Stopping, null, "scaled-down")]
    [InlineData(StopReason.ScaledDown, WorkerState.Stopping, StopReason.MaxRequests, "scaled-down")]
    [InlineData(StopReason.MasterStopping, WorkerState.Stopping, StopReason.Lifetime, "stopping")]
    public void Why_a_worker_went_in_one_word(StopReason? reason, WorkerState state, StopReason? retire, string word) =>
        Assert.Equal(word, Observatory.WhyGone(new WorkerExit(1, 0, state, reason, retire, 0)));

    [Fact]
    public void The_settings_parse_and_default_to_off_with_a_ten_percent_cap()
    {
        var none = Settings.Ok("App.dll");
        Assert.Equal(TimeSpan.Zero, none.MaxWorkerLifetime);
        Assert.Equal(TimeSpan.Zero, none.MaxWorkerLifetimeJitter);
        Assert.Equal(10, none.MaxRecycleCpu);
        var set = Settings.Ok("--max-worker-lifetime", "3600", "--max-worker-lifetime-jitter", "600.5", "--max-recycle-cpu", "25", "App.dll");
        Assert.Equal(3600 * S, set.MaxWorkerLifetime);
        Assert.Equal(600.5 * S, set.MaxWorkerLifetimeJitter);
        Assert.Equal(25, set.MaxRecycleCpu);
    }
}
