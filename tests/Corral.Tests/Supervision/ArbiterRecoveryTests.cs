using Corral.Agent.Contract;
using Corral.Supervision;


namespace Corral.Tests;

/// <summary>A failed reload restores the old configuration; a worker that never gets ready is a failed boot.</summary>
public sealed class ArbiterRecoveryTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(200);

    [Fact]
    public void A_failed_reload_restores_the_old_configuration_for_later_respawns()
    {
        var rig = new ArbiterRig("-w", "2", "-t", "30").Booted();
        var before = rig.Arbiter.Config;
        rig.NextConfig = Settings.Ok("-w", "4", "-t", "5", "App.dll");
        rig.Signal(Signals.HUP);
        var fresh = rig.Booting;
        Assert.Equal(4, fresh.Length);

        rig.Exit(fresh[0], 1);
        rig.ExitSignalled();

        Assert.Same(before, rig.Arbiter.Config);
        Assert.Equal(2, rig.Arbiter.DesiredWorkers);
        Assert.Equal(2, rig.ServingPids.Length);
    }

    [Fact]
    public void A_worker_that_never_gets_ready_halts_the_first_boot_with_exit_3()
    {
        var rig = new ArbiterRig("-w", "1", "-t", "2");
        rig.Arbiter.Start();
        var pid = rig.Booting.Single();
        rig.Run(TimeSpan.FromSeconds(2.2), Step);
        Assert.True(rig.Log.Has("critical", $"WORKER TIMEOUT (pid:{pid})"));
        Assert.Contains(Signals.ABRT, rig.Host.SignalsTo(pid));

        rig.Exit(pid, 128 + Signals.ABRT);
        Assert.True(rig.Log.Has("error", "Worker failed to boot. not ready within --timeout"), string.Join("\n", rig.Log.Lines));
        Assert.True(rig.Log.Has("error", "agent never started"), string.Join("\n", rig.Log.Lines));
        rig.ExitSignalled(); // the replacement started meanwhile is stopped too
        Assert.True(rig.Arbiter.Finished);
        Assert.Equal(3, rig.Arbiter.ExitCode);
    }

    [Fact]
    public void Workers_that_hang_before_ready_after_the_first_boot_back_off()
    {
        var rig = new ArbiterRig("-w", "1", "-t", "1").Booted();
        var first = rig.Pids.Single();
        rig.Exit(first, 1); // a crash: replaced at once

        // Every replacement hangs before ready: each is killed after --timeout and its exit is a failed boot.
        rig.Run(TimeSpan.FromSeconds(60), Step, () =>
        {
            foreach (var w in rig.Workers.Where(w => w.State == WorkerState.Killing).ToList())
            {
                rig.Exit(w.Pid, 128 + Signals.ABRT);
            }
            foreach (var w in rig.Workers.Where(w => w.IsServing).ToList())
            {
                rig.Heartbeat(w.Pid);
            }
        });
        Assert.False(rig.Arbiter.Finished);
        Assert.True(rig.Log.Has("warning", "next attempt in"));
        // Without back-off a 1 s timeout would mean ~50 spawns in 60 s.
        Assert.InRange(rig.Host.Spawned.Count, 3, 15);
    }
}

/// <summary>--reload-strategy rolling: one worker at a time, never fewer than --workers ready.</summary>
public sealed class ArbiterRollingTests
{
    [Fact]
    public void Rolling_replaces_one_worker_at_a_time()
    {
        var rig = new ArbiterRig("-w", "3", "--reload-strategy", "rolling").Booted();
        var old = rig.Pids;
        rig.NextConfig = rig.Config;
        rig.Signal(Signals.HUP);

        var stopped = new List<int>();
        for (var step = 0; step < 3; step++)
        {
            var booting = Assert.Single(rig.Booting);
            Assert.True(rig.ReadyCount >= 3);
            rig.Ready(booting);
            var term = old.Where(p => rig.Host.SignalsTo(p).Contains(Signals.TERM)).Except(stopped).ToList();
            Assert.Single(term); // exactly one old worker drains per new ready worker
            stopped.AddRange(term);
            Assert.True(rig.ReadyCount >= 3, $"only {rig.ReadyCount} ready after step {step}");
            rig.ExitSignalled();
        }
        Assert.Empty(rig.Booting);
        Assert.Equal(old.Order(), stopped.Order()); // oldest first, all of them
        Assert.Equal(3, rig.ServingPids.Length);
        Assert.Empty(rig.ServingPids.Intersect(old));
    }

    [Fact]
    public void All_boots_every_new_worker_before_any_old_one_drains()
    {
        var rig = new ArbiterRig("-w", "3").Booted();
        var old = rig.Pids;
        rig.NextConfig = rig.Config;
        rig.Signal(Signals.HUP);
        var fresh = rig.Booting;
        Assert.Equal(3, fresh.Length);
        rig.Ready(fresh[0]);
        rig.Ready(fresh[1]);
        Assert.All(old, p => Assert.Empty(rig.Host.SignalsTo(p)));
        rig.Ready(fresh[2]);
        Assert.All(old, p => Assert.Equal([Signals.TERM], rig.Host.SignalsTo(p)));
    }
}
