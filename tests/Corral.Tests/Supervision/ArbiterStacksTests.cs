using Corral.Agent.Contract;
using Corral.Supervision;

namespace Corral.Tests;

/// <summary>
/// The evidence before the kill: a timed-out worker's stacks are captured before its SIGABRT (sent when
/// the capture ends, or after a bound), and a starved worker is logged once per episode, its stacks
/// captured at most once per interval.
/// </summary>
public sealed class ArbiterStacksTests
{
    private static readonly TimeSpan S = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    private static (ArbiterRig Rig, int Hung, int Fine) TimedOut(bool capturesEnd)
    {
        var rig = new ArbiterRig("-w", "2", "-t", "5").Booted();
        rig.CapturesEnd = capturesEnd;
        var (hung, fine) = (rig.Pids[0], rig.Pids[1]);
        rig.Run(TimeSpan.FromSeconds(5), Step, () => rig.Heartbeat(fine));
        Assert.Empty(rig.Host.Captures);
        // The tick that finds it timed out asks for its stacks, and sends nothing yet.
        rig.Clock.Advance(Step);
        rig.Heartbeat(fine);
        rig.Arbiter.Tick();
        return (rig, hung, fine);
    }

    [Fact]
    public void A_timed_out_worker_is_aborted_once_its_stacks_are_captured_then_killed()
    {
        var (rig, hung, fine) = TimedOut(capturesEnd: true);
        Assert.True(rig.Log.Has("critical", $"WORKER TIMEOUT (pid:{hung})"));
        Assert.Equal([(hung, "WORKER TIMEOUT", (int?)null)], rig.Host.Captures);
        Assert.Empty(rig.Host.SignalsTo(hung));
        Assert.Equal(WorkerState.Killing, rig.Worker(hung).State);
        Assert.Equal(3, rig.Host.Spawned.Count); // its replacement does not wait for the capture

        rig.Clock.Advance(TimeSpan.FromMilliseconds(700)); // the capture took 0.7 s
        rig.EndCaptures();
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(hung));

        // SIGKILL comes the abort grace after the SIGABRT, not after the timeout.
        rig.Tick(Arbiter.AbortGrace - TimeSpan.FromMilliseconds(1));
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(hung));
        rig.Tick(TimeSpan.FromMilliseconds(1));
        Assert.Equal([Signals.ABRT, Signals.KILL], rig.Host.SignalsTo(hung));
        Assert.Empty(rig.Host.SignalsTo(fine));
        Assert.Single(rig.Host.Captures);
    }

    [Fact]
    public void A_capture_that_does_not_end_delays_the_abort_only_up_to_its_bound()
    {
        var (rig, hung, _) = TimedOut(capturesEnd: false);
        rig.Tick(Arbiter.StacksBound - TimeSpan.FromMilliseconds(1));
        Assert.Empty(rig.Host.SignalsTo(hung));
        rig.Tick(TimeSpan.FromMilliseconds(1));
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(hung));

        // The capture ending late changes nothing: no second SIGABRT.
        rig.EndCaptures();
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(hung));
        rig.Tick(Arbiter.AbortGrace);
        Assert.Equal([Signals.ABRT, Signals.KILL], rig.Host.SignalsTo(hung));
    }

    [Fact]
    public void A_worker_that_exits_while_its_stacks_are_captured_is_forgotten()
    {
        var (rig, hung, _) = TimedOut(capturesEnd: false);
        rig.Exit(hung, 1);
        rig.EndCaptures();
        rig.Tick(Arbiter.StacksBound);
        Assert.Empty(rig.Host.SignalsTo(hung));
    }

    [Fact]
    public void A_worker_not_ready_within_the_timeout_has_its_stacks_captured_too()
    {
        var rig = new ArbiterRig("-w", "1", "-t", "10");
        rig.Arbiter.Start();
        var slow = rig.Pids[0];
        rig.Run(TimeSpan.FromSeconds(10) + S, S);
        Assert.Equal([(slow, "WORKER TIMEOUT, while booting", (int?)null)], rig.Host.Captures);
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(slow));
    }

    private static void Starved(ArbiterRig rig, int pid, long delayMs, string? serving = null) =>
        rig.Arbiter.OnMessage(pid, new Message(MessageKind.Starved, BusyMs: delayMs, Text: serving));

    [Fact]
    public void A_starved_worker_is_logged_counted_and_its_stacks_captured()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var pid = rig.Pids[0];
        Starved(rig, pid, 1042, "GET /orders");

        Assert.True(rig.Log.Has("warning", $"Worker (pid:{pid}) thread pool starved: queued work waited 1042 ms"));
        Assert.True(rig.Log.Has("warning", "serving: GET /orders"));
        Assert.Equal([(pid, "thread pool starved", (int?)null)], rig.Host.Captures);
        Assert.Equal(1, rig.Arbiter.StarvationEpisodes);
        Assert.Empty(rig.Host.Sent); // nothing is stopped for it
    }

    [Fact]
    public void Starvation_stacks_are_captured_at_most_once_per_interval_per_worker()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var (a, b) = (rig.Pids[0], rig.Pids[1]);
        Starved(rig, a, 1000);
        rig.Run(TimeSpan.FromSeconds(10), S, rig.HeartbeatAll);
        Starved(rig, a, 1500); // a second episode, soon after
        Starved(rig, b, 1200); // another worker: its own interval
        Assert.Equal([a, b], rig.Host.Captures.Select(c => c.Pid));
        Assert.Equal(3, rig.Arbiter.StarvationEpisodes);
        Assert.True(rig.Log.Has("warning", $"Worker (pid:{a}) thread pool starved: queued work waited 1500 ms"));
        Assert.True(rig.Log.Has("warning", "not again"));

        rig.Run(Arbiter.StarvationStacksInterval, S, rig.HeartbeatAll);
        Starved(rig, a, 1100);
        Assert.Equal([a, b, a], rig.Host.Captures.Select(c => c.Pid));
    }

    [Fact]
    public void A_starvation_report_is_no_sign_of_life()
    {
        // Sent from the agent's own thread: a worker whose pool is stuck still times out.
        var rig = new ArbiterRig("-w", "1", "-t", "5").Booted();
        var pid = rig.Pids[0];
        rig.Run(TimeSpan.FromSeconds(4), S);
        Starved(rig, pid, 4000);
        rig.Run(TimeSpan.FromSeconds(2), S);
        Assert.True(rig.Log.Has("critical", $"WORKER TIMEOUT (pid:{pid})"));
    }
}
