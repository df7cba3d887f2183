using Corral.Agent.Contract;
using Corral.Supervision;


namespace Corral.Tests;

/// <summary>
/// --request-timeout on the master's side: a worker's "hung" line makes it retire (successor first),
/// is logged once with the request, asks for its stacks once (with the thread), and the worker is
/// killed at --graceful-timeout if its hung request keeps it from finishing its drain.
/// </summary>
public class ArbiterDeadlineTests
{
    private static readonly TimeSpan S = TimeSpan.FromMilliseconds(100);

    [Fact]
    public void A_hung_request_retires_its_worker_once_successor_first_and_asks_for_its_stacks_with_the_thread()
    {
        var rig = new ArbiterRig("-w", "2", "--request-timeout", "2", "--graceful-timeout", "5").Booted();
        var (hung, other) = (rig.Pids[0], rig.Pids[1]);

        rig.Hung(hung, osThreadId: 777, path: "/hang/spin", requestId: "0HN1:00000002");

        var line = Assert.Single(rig.Log.Lines, l => l.Level == "error");
        Assert.Equal($"Worker (pid:{hung}) hung on GET /hang/spin (request id 0HN1:00000002) past --request-timeout 2 s: starting its successor, then it drains", line.Text);
        var capture = Assert.Single(rig.Host.Captures);
        Assert.Equal((hung, 777), (capture.Pid, capture.OsThreadId));
        Assert.Contains("GET /hang/spin", capture.Why, StringComparison.Ordinal);
        Assert.Equal(StopReason.Deadline, rig.Worker(hung).RetireReason);
        var successor = Assert.Single(rig.Booting);
        Assert.Empty(rig.Host.Sent); // successor first: the hung worker still serves its other requests

        // Another request of it hangs, and the first is reported again: still one line, one capture, one successor.
        rig.Hung(hung, osThreadId: 778, path: "/hang/sleep");
        rig.Hung(hung, osThreadId: 777);
        rig.Run(TimeSpan.FromSeconds(1), S, rig.HeartbeatAll);
        Assert.Single(rig.Log.Lines, l => l.Level == "error");
        Assert.Single(rig.Host.Captures);
        Assert.Equal(3, rig.Host.Spawned.Count);

        rig.Ready(successor);
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(hung));
        Assert.Empty(rig.Host.SignalsTo(other));
        Assert.Equal(StopReason.Deadline, rig.Worker(hung).StopReason);

        // Its hung request never ends: the drain runs to --graceful-timeout, then SIGKILL.
        rig.Run(TimeSpan.FromSeconds(4.8), S, rig.HeartbeatAll);
        Assert.DoesNotContain(Signals.KILL, rig.Host.SignalsTo(hung));
        rig.Run(TimeSpan.FromSeconds(0.3), S, rig.HeartbeatAll);
        Assert.Equal([Signals.TERM, Signals.KILL], rig.Host.SignalsTo(hung));
        rig.Exit(hung, 128 + Signals.KILL);
        Assert.Equal([other, successor], rig.Pids);
        Assert.Equal(3, rig.Host.Spawned.Count);
        Assert.Equal(StopReason.Deadline, Assert.Single(rig.Arbiter.Exits).RetireReason);
    }

    [Fact]
    public void A_worker_already_retiring_that_hangs_is_said_once_and_captured_but_not_replaced_twice()
    {
        var rig = new ArbiterRig("-w", "1", "--request-timeout", "1", "--max-requests", "10").Booted();
        var pid = rig.Pids[0];
        rig.Recycle(pid);

        rig.Hung(pid, osThreadId: 31);

        Assert.True(rig.Log.Has("error", $"Worker (pid:{pid}) hung on GET /hang/spin (request id 0HN1:00000001) past --request-timeout 1 s: it is already being replaced"));
        Assert.Equal(StopReason.MaxRequests, rig.Worker(pid).RetireReason);
        Assert.Equal(31, Assert.Single(rig.Host.Captures).OsThreadId);
        Assert.Single(rig.Booting);
    }

    [Fact]
    public void A_hung_line_from_a_worker_the_master_does_not_know_changes_nothing()
    {
        var rig = new ArbiterRig("-w", "1", "--request-timeout", "1").Booted();

        rig.Hung(99999);

        Assert.Empty(rig.Host.Captures);
        Assert.DoesNotContain(rig.Log.Lines, l => l.Level == "error");
        Assert.Empty(rig.Booting);
    }
}
