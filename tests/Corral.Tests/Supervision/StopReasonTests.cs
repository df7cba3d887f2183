using Corral.Agent.Contract;
using Corral.Supervision;


namespace Corral.Tests;

/// <summary>
/// Why the arbiter stopped each worker, as it records it when it decides, and what observers see of a
/// worker that is gone (<see cref="Corral.Supervision.Arbiter.Exits"/>).
/// </summary>
public class StopReasonTests
{
    private static readonly TimeSpan S = TimeSpan.FromSeconds(1);

    private static WorkerExit ExitOf(ArbiterRig rig, int pid) => rig.Arbiter.Exits.Single(e => e.Pid == pid);

    [Fact]
    public void Hup_stops_the_old_generation_for_reload()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var old = rig.Pids;
        rig.NextConfig = rig.Config;
        rig.Signal(Signals.HUP);
        Assert.All(old, pid => Assert.Null(rig.Worker(pid).StopReason)); // still serving while the new ones boot
        rig.ReadyAll();

        Assert.All(old, pid => Assert.Equal(StopReason.Reload, rig.Worker(pid).StopReason));
        rig.ExitSignalled();
        Assert.All(old, pid => Assert.Equal(new WorkerExit(pid, 0, WorkerState.Stopping, StopReason.Reload, null, 128 + Signals.TERM), ExitOf(rig, pid)));
        Assert.All(rig.Workers, w => Assert.Null(w.StopReason));
    }

    [Fact]
    public void Rolling_reload_stops_each_old_worker_for_reload()
    {
        var rig = new ArbiterRig("-w", "2", "--reload-strategy", "rolling").Booted();
        var old = rig.Pids;
        rig.NextConfig = rig.Config;
        rig.Signal(Signals.HUP);
        rig.ReadyAll();
        Assert.Equal(StopReason.Reload, rig.Worker(old[0]).StopReason);
        Assert.Null(rig.Worker(old[1]).StopReason); // one at a time
        rig.ReadyAll();
        Assert.Equal(StopReason.Reload, rig.Worker(old[1]).StopReason);
    }

    [Fact]
    public void A_newer_hup_stops_the_still_booting_workers_as_superseded()
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        rig.NextConfig = rig.Config;
        rig.Signal(Signals.HUP);
        var first = rig.Booting.Single();
        rig.Signal(Signals.HUP);

        Assert.Equal(StopReason.SupersededBoot, rig.Worker(first).StopReason);
        Assert.Equal(WorkerState.Stopping, rig.Worker(first).State);
    }

    [Fact]
    public void A_failed_reload_stops_its_new_workers_as_failed_reload()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        rig.NextConfig = rig.Config;
        rig.Signal(Signals.HUP);
        var fresh = rig.Booting;
        rig.Exit(fresh[0], 1);

        Assert.Equal(StopReason.FailedReload, rig.Worker(fresh[1]).StopReason);
        var failed = ExitOf(rig, fresh[0]);
        Assert.True(failed.Unasked);
        Assert.Equal(WorkerState.Booting, failed.LastState);
        Assert.Equal(1, failed.ExitCode);
    }

    [Theory]
    [InlineData(null, StopReason.MaxRequests)]
    [InlineData(Protocol.OutOfMemory, StopReason.OutOfMemory)]
    public void A_recycled_worker_retires_for_its_reason_and_is_stopped_for_it_once_its_successor_is_ready(string? text, StopReason reason)
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        var pid = rig.Pids[0];
        rig.Arbiter.OnMessage(pid, new Message(MessageKind.Recycle, Text: text));

        Assert.Equal(reason, rig.Worker(pid).RetireReason);
        Assert.True(rig.Worker(pid).Retiring);
        Assert.Null(rig.Worker(pid).StopReason); // serves until its successor is ready
        rig.ReadyAll();

        Assert.Equal(reason, rig.Worker(pid).StopReason);
        rig.ExitSignalled();
        Assert.Equal(new WorkerExit(pid, 0, WorkerState.Stopping, reason, reason, 128 + Signals.TERM), ExitOf(rig, pid));
    }

    [Fact]
    public void A_silent_worker_is_stopped_for_timeout_and_a_slow_boot_is_a_boot_failure_too()
    {
        var rig = new ArbiterRig("-w", "2", "-t", "10");
        rig.Arbiter.Start();
        var (slow, hung) = (rig.Pids[0], rig.Pids[1]);
        rig.Ready(hung);
        rig.Run(TimeSpan.FromSeconds(11), S);

        Assert.All(new[] { slow, hung }, pid => Assert.Equal(StopReason.Timeout, rig.Worker(pid).StopReason));
        Assert.All(new[] { slow, hung }, pid => Assert.Equal(WorkerState.Killing, rig.Worker(pid).State));
        Assert.True(rig.Worker(slow).BootTimedOut);
        Assert.Equal("not ready within --timeout (10 s)", rig.Worker(slow).LastError);
        Assert.False(rig.Worker(hung).BootTimedOut);
        Assert.Null(rig.Worker(hung).LastError);
        rig.Tick(Corral.Supervision.Arbiter.AbortGrace);
        Assert.True(rig.Worker(hung).KillSent);
        rig.Exit(hung, 128 + Signals.KILL);
        Assert.Equal(WorkerState.Killing, ExitOf(rig, hung).LastState);
        Assert.Equal(StopReason.Timeout, ExitOf(rig, hung).Reason);
    }

    [Fact]
    public void Ctl_kill_stops_the_worker_as_ctl_kill()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var pid = rig.Pids[1];
        Assert.True(rig.Arbiter.KillWorker(pid));
        Assert.Equal(StopReason.CtlKill, rig.Worker(pid).StopReason);
        Assert.Null(rig.Worker(rig.Pids[0]).StopReason);
    }

    [Fact]
    public void Ttou_stops_the_oldest_as_scaled_down()
    {
        var rig = new ArbiterRig("-w", "3").Booted();
        var oldest = rig.Pids[0];
        rig.Signal(Signals.TTOU);
        Assert.Equal(StopReason.ScaledDown, rig.Worker(oldest).StopReason);
        Assert.Equal(1, rig.Workers.Count(w => w.StopReason is not null));
    }

    [Fact]
    public void Winch_parks_every_serving_worker()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        rig.Signal(Signals.WINCH);
        Assert.All(rig.Workers, w => Assert.Equal(StopReason.Parked, w.StopReason));
    }

    [Fact]
    public void The_master_stopping_is_the_last_reason_of_every_worker_even_one_already_stopping()
    {
        var rig = new ArbiterRig("-w", "3").Booted();
        var killed = rig.Pids[0];
        rig.Arbiter.KillWorker(killed);
        rig.Signal(Signals.TERM);

        Assert.All(rig.Workers, w => Assert.Equal(StopReason.MasterStopping, w.StopReason));
        rig.ExitSignalled();
        Assert.Equal(StopReason.MasterStopping, ExitOf(rig, killed).Reason);
        Assert.True(rig.Arbiter.Finished);
    }

    [Fact]
    public void A_worker_that_exits_unasked_is_gone_with_no_reason_and_its_last_state()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var pid = rig.Pids[0];
        rig.Exit(pid, 1);
        var exit = Assert.Single(rig.Arbiter.Exits);
        Assert.Equal(new WorkerExit(pid, 0, WorkerState.Ready, null, null, 1), exit);
        Assert.True(exit.Unasked);
        Assert.Equal(1, rig.Arbiter.ExitCount);
    }

    [Fact]
    public void Exits_keeps_the_latest_and_exits_since_gives_only_the_unseen()
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        var gone = new List<int>();
        for (var i = 0; i < Corral.Supervision.Arbiter.ExitsKept + 10; i++)
        {
            var pid = rig.Pids[0];
            gone.Add(pid);
            rig.Exit(pid, 1);
            rig.Ready(rig.Pids[0]);
        }

        Assert.Equal(Corral.Supervision.Arbiter.ExitsKept + 10, rig.Arbiter.ExitCount);
        Assert.Equal(gone.TakeLast(Corral.Supervision.Arbiter.ExitsKept), rig.Arbiter.Exits.Select(e => e.Pid));
        Assert.Equal(gone.TakeLast(3), rig.Arbiter.ExitsSince(rig.Arbiter.ExitCount - 3).Select(e => e.Pid));
        Assert.Empty(rig.Arbiter.ExitsSince(rig.Arbiter.ExitCount));
        // Seen long ago: what is still kept.
        Assert.Equal(Corral.Supervision.Arbiter.ExitsKept, rig.Arbiter.ExitsSince(0).Count());
    }

    [Fact]
    public void Change_workers_moves_the_wanted_number_at_once_and_never_below_one()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        rig.Arbiter.ChangeWorkers(3);
        Assert.Equal(5, rig.Arbiter.DesiredWorkers);
        Assert.Equal(3, rig.Booting.Length);
        Assert.DoesNotContain(rig.Log.Lines, l => l.Text.StartsWith("Handling signal", StringComparison.Ordinal));
        rig.ReadyAll();

        var oldest = rig.Pids.Take(4).ToArray();
        rig.Arbiter.ChangeWorkers(-10);
        Assert.Equal(1, rig.Arbiter.DesiredWorkers);
        Assert.All(oldest, pid => Assert.Equal(StopReason.ScaledDown, rig.Worker(pid).StopReason));
        Assert.Equal([rig.Pids[4]], rig.ServingPids);
    }
}
