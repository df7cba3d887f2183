using Corral.Agent.Contract;
using Corral.Supervision;

namespace Corral.Tests;

/// <summary>--max-worker-memory in the arbiter: the worker's "recycle memory", and the master's hard ceiling.</summary>
public class ArbiterMemoryTests
{
    private const long Mi = 1L << 20;

    private static void RecycleMemory(ArbiterRig rig, int pid) =>
        rig.Arbiter.OnMessage(pid, new Message(MessageKind.Recycle, Text: Protocol.Memory));

    [Fact]
    public void Recycle_memory_retires_the_worker_successor_first_then_it_drains()
    {
        var rig = new ArbiterRig("-w", "2", "--max-worker-memory", "200MB").Booted();
        var (over, other) = (rig.Pids[0], rig.Pids[1]);
        rig.Arbiter.OnMemory(over, 210 * Mi);

        RecycleMemory(rig, over);

        Assert.True(rig.Log.Has("warning", $"Worker (pid:{over}) is above --max-worker-memory (PSS 210 MiB > 200 MiB after a full GC; it takes no new connections): starting its successor, then it drains"));
        Assert.Equal(StopReason.Memory, rig.Worker(over).RetireReason);
        var successor = Assert.Single(rig.Booting);
        Assert.Empty(rig.Host.Sent);
        RecycleMemory(rig, over); // said twice: one successor, one line
        Assert.Single(rig.Booting);
        Assert.Single(rig.Log.Lines, l => l.Text.Contains("above --max-worker-memory", StringComparison.Ordinal));

        rig.Ready(successor);

        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(over));
        Assert.Empty(rig.Host.SignalsTo(other));
        rig.Exit(over, 0);
        var exit = Assert.Single(rig.Arbiter.Exits);
        Assert.Equal(StopReason.Memory, exit.RetireReason);
    }

    [Fact]
    public void Above_the_ceiling_the_worker_is_killed_at_once_and_replaced()
    {
        var rig = new ArbiterRig("-w", "2", "--max-worker-memory", "200MB").Booted();
        var (over, other) = (rig.Pids[0], rig.Pids[1]);

        rig.Arbiter.OnMemory(over, 290 * Mi); // under the default ceiling, 1.5 x 200 = 300 MiB
        rig.Arbiter.OnMemory(other, 100 * Mi);
        Assert.Empty(rig.Host.Sent);

        rig.Arbiter.OnMemory(over, 301 * Mi);

        Assert.True(rig.Log.Has("error", $"Worker (pid:{over}) is above the memory ceiling (301 MiB > 300 MiB): killing it"));
        Assert.Equal([Signals.KILL], rig.Host.SignalsTo(over));
        Assert.Equal(WorkerState.Killing, rig.Worker(over).State);
        Assert.Single(rig.Booting); // its replacement boots at once
        rig.Arbiter.OnMemory(over, 400 * Mi); // read again before it is gone: not killed twice
        rig.Run(TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(200), rig.HeartbeatAll);
        Assert.Equal([Signals.KILL], rig.Host.SignalsTo(over));

        rig.Exit(over, 128 + Signals.KILL);
        Assert.False(rig.Log.Has("error", "Perhaps out of memory?")); // expected: not reported as a crash
        Assert.Equal(StopReason.MemoryCeiling, Assert.Single(rig.Arbiter.Exits).Reason);
        Assert.Empty(rig.Host.SignalsTo(other));
    }

    [Fact]
    public void A_draining_worker_above_the_ceiling_is_killed_too()
    {
        var rig = new ArbiterRig("-w", "1", "--max-worker-memory", "200MB", "--max-worker-memory-ceiling", "250MB").Booted();
        var over = rig.Pids[0];
        RecycleMemory(rig, over);
        rig.Ready(Assert.Single(rig.Booting));
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(over));

        rig.Arbiter.OnMemory(over, 260 * Mi);

        Assert.Equal([Signals.TERM, Signals.KILL], rig.Host.SignalsTo(over));
        Assert.True(rig.Log.Has("error", "above the memory ceiling (260 MiB > 250 MiB)"));
    }

    [Fact]
    public void Without_a_limit_memory_readings_change_nothing()
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        rig.Arbiter.OnMemory(rig.Pids[0], 100_000 * Mi);
        Assert.Empty(rig.Host.Sent);
        Assert.Equal(100_000 * Mi, rig.Worker(rig.Pids[0]).Memory);
    }
}
