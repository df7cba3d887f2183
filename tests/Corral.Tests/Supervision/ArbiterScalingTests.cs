using Corral.Agent.Contract;
using Corral.Supervision;


namespace Corral.Tests;

/// <summary>-w MIN:MAX: the arbiter's adaptive worker count, driven with the fakes and a fake clock.</summary>
public class ArbiterScalingTests
{
    private static readonly TimeSpan Half = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// <paramref name="duration"/> of load sampled twice a second, as the master does: each ready worker
    /// heartbeats <paramref name="busyEach"/> requests in flight, <paramref name="queued"/> wait in the
    /// kernel's queue; new workers become ready at once (<paramref name="readyNew"/>) and stopped ones exit.
    /// </summary>
    private static void Load(ArbiterRig rig, TimeSpan duration, long queued, int busyEach, bool readyNew = true) =>
        Load(rig, duration, queued, _ => busyEach, readyNew);

    /// <summary>As above, each ready worker (in the order they started) with its own requests in flight.</summary>
    private static void Load(ArbiterRig rig, TimeSpan duration, long queued, Func<int, int> busy, bool readyNew = true)
    {
        for (var t = TimeSpan.Zero; t < duration; t += Half)
        {
            rig.Clock.Advance(Half);
            if (readyNew)
            {
                rig.ReadyAll();
            }
            rig.ExitSignalled();
            var i = 0;
            foreach (var w in rig.Workers.Where(w => w.State == WorkerState.Ready).OrderBy(w => w.Age).ToList())
            {
                rig.Heartbeat(w.Pid, inFlight: busy(i++));
            }
            rig.Arbiter.OnLoad(queued);
            rig.Arbiter.Tick();
        }
    }

    private static int Serving(ArbiterRig rig) => rig.Workers.Count(w => w.IsServing);

    private static string[] ScaleLines(ArbiterRig rig) => [.. rig.Log.Lines.Where(l => l.Text.StartsWith("Scaling ", StringComparison.Ordinal)).Select(l => l.Text)];

    [Fact]
    public void A_range_starts_min_workers_and_an_idle_master_stays_there()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "2:5").Booted();
        Assert.Equal(2, rig.Host.Spawned.Count);

        Load(rig, TimeSpan.FromSeconds(120), queued: 0, busyEach: 0);

        Assert.Equal(2, rig.Arbiter.DesiredWorkers);
        Assert.Equal(2, rig.Host.Spawned.Count);
        Assert.Empty(ScaleLines(rig));
        Assert.Equal((2, 5), (rig.Arbiter.WorkersMin, rig.Arbiter.WorkersMax));
    }

    [Fact]
    public void A_fixed_count_never_scales_whatever_the_load()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "2").Booted();
        Assert.Null(rig.Arbiter.Scaler);

        Load(rig, TimeSpan.FromSeconds(30), queued: 50, busyEach: 1);

        Assert.Equal(2, rig.Host.Spawned.Count);
        Assert.Empty(ScaleLines(rig));
    }

    [Fact]
    public void A_sustained_queue_adds_one_worker_per_cooldown_up_to_max_and_says_why()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:4", "--scale-up-after", "1", "--scale-cooldown", "3").Booted();

        Load(rig, TimeSpan.FromSeconds(0.5), queued: 12, busyEach: 1);
        Assert.Equal(1, rig.Arbiter.DesiredWorkers); // half a second is not sustained

        var times = new List<double>();
        var start = rig.Clock.GetUtcNow();
        for (var i = 0; i < 60; i++)
        {
            var before = rig.Arbiter.DesiredWorkers;
            Load(rig, Half, queued: 12, busyEach: 1);
            if (rig.Arbiter.DesiredWorkers != before)
            {
                times.Add((rig.Clock.GetUtcNow() - start).TotalSeconds);
            }
        }

        Assert.Equal(4, rig.Arbiter.DesiredWorkers);
        Assert.Equal(4, Serving(rig));
        Assert.Equal(4, rig.Host.Spawned.Count); // no storm: exactly the three added
        Assert.Equal(3, times.Count);
        Assert.All(times.Zip(times.Skip(1)), p => Assert.True(p.Second - p.First >= 3, $"steps {p.First} s and {p.Second} s are closer than the cool-down"));
        // The first after 1 s of queue; the next ones when the cool-down allows (the queue stayed meanwhile).
        Assert.Equal(["Scaling up to 2 workers: 12 connections queued for 1.0 s", "Scaling up to 3 workers: 12 connections queued for 2.5 s", "Scaling up to 4 workers: 12 connections queued for 2.5 s"], ScaleLines(rig));
        Assert.Equal(3, rig.Arbiter.ScaleUps);
        Assert.Equal(0, rig.Arbiter.ScaleDowns);
    }

    [Fact]
    public void Every_slot_busy_without_a_queue_scales_up_too()
    {
        var rig = new ArbiterRig("-k", "gthread", "--threads", "4", "-w", "1:3").Booted();

        Load(rig, TimeSpan.FromSeconds(1.5), queued: 0, busyEach: 4);

        Assert.Equal(2, rig.Arbiter.DesiredWorkers);
        Assert.StartsWith("Scaling up to 2 workers: all 4 slots busy for 1.0 s", ScaleLines(rig).Single());
    }

    [Fact]
    public void Some_slots_busy_and_no_queue_is_not_pressure()
    {
        var rig = new ArbiterRig("-k", "gthread", "--threads", "4", "-w", "1:3").Booted();

        Load(rig, TimeSpan.FromSeconds(60), queued: 0, busyEach: 3);

        Assert.Equal(1, rig.Arbiter.DesiredWorkers);
    }

    [Fact]
    public void No_step_up_while_a_worker_boots()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:4", "--scale-cooldown", "0").Booted();

        Load(rig, TimeSpan.FromSeconds(20), queued: 30, busyEach: 1, readyNew: false);

        Assert.Equal(2, rig.Arbiter.DesiredWorkers); // the second never said ready: its effect is not known
        Assert.Equal(2, rig.Host.Spawned.Count);
    }

    [Fact]
    public void Idle_after_load_steps_down_to_min_after_the_idle_period_draining_like_hup()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:4", "--scale-down-after", "10", "--scale-cooldown", "2").Booted();
        Load(rig, TimeSpan.FromSeconds(30), queued: 20, busyEach: 1);
        Assert.Equal(4, Serving(rig));
        var spawned = rig.Host.Spawned.Count;

        Load(rig, TimeSpan.FromSeconds(9.5), queued: 0, busyEach: 0);
        Assert.Equal(4, rig.Arbiter.DesiredWorkers); // not idle long enough yet

        Load(rig, TimeSpan.FromSeconds(20), queued: 0, busyEach: 0);

        Assert.Equal(1, rig.Arbiter.DesiredWorkers);
        Assert.Equal(1, Serving(rig));
        Assert.Equal(spawned, rig.Host.Spawned.Count); // none replaced
        Assert.Equal(3, rig.Arbiter.ScaleDowns);
        Assert.Contains("Scaling down to 3 workers: at most 0 of 4 slots busy and nothing queued for 10 s", ScaleLines(rig));
        Assert.Contains("Scaling down to 1 worker: at most 0 of 2 slots busy and nothing queued for 10 s", ScaleLines(rig));
        // Retired with TERM (the drain of HUP), never QUIT or KILL, and gone as scaled down.
        var retired = rig.Arbiter.Exits.Where(e => e.Reason == StopReason.ScaledDown).ToList();
        Assert.Equal(3, retired.Count);
        Assert.All(retired, e => Assert.Equal(Signals.TERM, Assert.Single(rig.Host.SignalsTo(e.Pid))));
    }

    [Fact]
    public void A_worker_s_worth_of_busy_slots_keeps_the_count()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:4", "--scale-down-after", "5").Booted();
        Load(rig, TimeSpan.FromSeconds(30), queued: 20, busyEach: 1);
        Assert.Equal(4, rig.Arbiter.DesiredWorkers);

        // 3 of 4 busy: with one fewer every slot would be busy: no step down (and no pressure either).
        Load(rig, TimeSpan.FromSeconds(60), queued: 0, busy: i => i < 3 ? 1 : 0);

        Assert.Equal(4, rig.Arbiter.DesiredWorkers);
        Assert.Equal(0, rig.Arbiter.ScaleDowns);
    }

    [Fact]
    public void The_idlest_worker_goes_first()
    {
        var rig = new ArbiterRig("-k", "gthread", "--threads", "4", "-w", "1:2", "--scale-down-after", "5").Booted();
        Load(rig, TimeSpan.FromSeconds(3), queued: 5, busyEach: 4);
        Assert.Equal(2, Serving(rig));
        var (older, newer) = (rig.Pids[0], rig.Pids[1]);

        // The older worker serves one request, the newer none: the newer one, idler, is retired.
        Load(rig, TimeSpan.FromSeconds(15), queued: 0, busy: i => i == 0 ? 1 : 0);

        Assert.Equal(1, rig.Arbiter.DesiredWorkers);
        Assert.Equal(older, Assert.Single(rig.ServingPids));
        Assert.Contains(rig.Arbiter.Exits, e => e.Pid == newer && e.Reason == StopReason.ScaledDown);
    }

    [Fact]
    public void Alternating_load_does_not_storm()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:4", "--scale-down-after", "10", "--scale-cooldown", "3").Booted();

        // Bursts of 0.5 s queue then 0.5 s calm for two minutes: never a second of sustained pressure,
        // never a calm window: the count does not move.
        for (var i = 0; i < 120; i++)
        {
            Load(rig, Half, queued: 10, busyEach: 1);
            Load(rig, Half, queued: 0, busyEach: 0);
        }

        Assert.Equal(1, rig.Arbiter.DesiredWorkers);
        Assert.Single(rig.Host.Spawned);
    }

    [Fact]
    public void Ttin_and_ttou_move_min_and_max_together()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "2:4").Booted();

        rig.Signal(Signals.TTIN);
        Assert.Equal((3, 5, 3), (rig.Arbiter.WorkersMin, rig.Arbiter.WorkersMax, rig.Arbiter.DesiredWorkers));
        rig.ReadyAll();
        Assert.Equal(3, Serving(rig));

        rig.Signal(Signals.TTOU);
        rig.Signal(Signals.TTOU);
        Assert.Equal((1, 3, 1), (rig.Arbiter.WorkersMin, rig.Arbiter.WorkersMax, rig.Arbiter.DesiredWorkers));
        Assert.Equal(1, Serving(rig));

        // At the floor MIN stays 1, MAX comes down to it.
        rig.Signal(Signals.TTOU);
        rig.Signal(Signals.TTOU);
        Assert.Equal((1, 1, 1), (rig.Arbiter.WorkersMin, rig.Arbiter.WorkersMax, rig.Arbiter.DesiredWorkers));
    }

    [Fact]
    public void After_ttin_idle_does_not_undo_it()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:4", "--scale-down-after", "5").Booted();

        rig.Arbiter.ChangeWorkers(2); // corral ctl add 2: -w 3:6
        Load(rig, TimeSpan.FromSeconds(60), queued: 0, busyEach: 0);

        Assert.Equal(3, rig.Arbiter.DesiredWorkers);
        Assert.Equal(3, Serving(rig));
    }

    [Fact]
    public void A_reload_with_another_range_clamps_the_count_into_it()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:4").Booted();
        Load(rig, TimeSpan.FromSeconds(15), queued: 20, busyEach: 1);
        Assert.Equal(4, rig.Arbiter.DesiredWorkers);

        rig.NextConfig = Settings.Ok("-k", "sync", "-w", "1:2", "App.dll");
        rig.Signal(Signals.HUP);

        Assert.Equal(2, rig.Arbiter.DesiredWorkers);
        Assert.Equal((1, 2), (rig.Arbiter.WorkersMin, rig.Arbiter.WorkersMax));
    }

    [Fact]
    public void A_failed_reload_keeps_the_old_range()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:4").Booted();
        rig.NextConfig = Settings.Ok("-k", "sync", "-w", "2", "App.dll");
        rig.Host.FailSpawnWith = "APP current/App.dll: App.runtimeconfig.json switches startup hooks off";
        rig.Signal(Signals.HUP);

        Assert.True(rig.Log.Has("error", "Reload failed: keeping the old workers"));
        Assert.Equal((1, 4, 1), (rig.Arbiter.WorkersMin, rig.Arbiter.WorkersMax, rig.Arbiter.DesiredWorkers));
        rig.Host.FailSpawnWith = null;
        Load(rig, TimeSpan.FromSeconds(3), queued: 5, busyEach: 1);
        Assert.Equal(2, rig.Arbiter.DesiredWorkers); // it still scales
    }

    [Fact]
    public void No_decision_while_the_master_stops()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:4").Booted();
        rig.Signal(Signals.TERM);

        rig.Arbiter.OnLoad(100);
        rig.Clock.Advance(TimeSpan.FromSeconds(5));
        rig.Arbiter.OnLoad(100);

        Assert.Single(rig.Host.Spawned);
        Assert.Empty(ScaleLines(rig));
    }

    [Fact]
    public void A_scale_up_takes_a_ready_spare_at_once_and_an_idle_spare_is_no_free_slot()
    {
        var rig = new ArbiterRig("-k", "sync", "-w", "1:3", "--spare-workers", "1", "--scale-up-after", "1", "--scale-cooldown", "3", "--scale-down-after", "10").Booted();
        rig.ReadyAll();
        var spare = Assert.Single(rig.Workers, w => w.Spare && w.IsServing).Pid;
        var serving = Assert.Single(rig.Workers, w => !w.Spare && w.IsServing).Pid;

        // The serving worker's one slot busy for long: up to 2, and the spare is what takes the place,
        // in the same event (USR2), not a boot. The spare's own slot never counted as free capacity.
        rig.Clock.Advance(TimeSpan.FromMilliseconds(500));
        for (var i = 0; i < 3; i++)
        {
            rig.Heartbeat(serving, inFlight: 1);
            rig.Arbiter.OnLoad(0);
            rig.Clock.Advance(TimeSpan.FromMilliseconds(500));
        }
        Assert.Equal(2, rig.Arbiter.DesiredWorkers);
        Assert.Equal([Signals.USR2], rig.Host.SignalsTo(spare));
        Assert.False(rig.Worker(spare).Spare);
        Assert.True(rig.Log.Has("info", $"Promoting spare worker (pid:{spare}): the load wants more workers"));
        // And a new spare boots in its place once every serving worker is ready.
        Assert.Equal(2, rig.Host.SpawnedSpares.Count);
    }
}
