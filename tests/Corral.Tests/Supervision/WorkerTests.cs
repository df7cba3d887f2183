using Corral.Supervision;


namespace Corral.Tests;

/// <summary>A worker's transitions, alone: each changes what goes with it and refuses what cannot be.</summary>
public class WorkerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static Worker Fresh() => new(1000, 0, 0, T0);

    [Fact]
    public void A_fresh_worker_boots_and_was_last_seen_when_spawned()
    {
        var w = Fresh();
        Assert.Equal(WorkerState.Booting, w.State);
        Assert.Equal(T0, w.LastSeen);
        Assert.True(w.IsServing);
        Assert.False(w.HeardFrom);
        Assert.Null(w.StopReason);
    }

    [Fact]
    public void Ready_counts_once()
    {
        var w = Fresh();
        Assert.True(w.MarkReady(T0.AddSeconds(2)));
        Assert.False(w.MarkReady(T0.AddSeconds(5)));
        Assert.Equal(T0.AddSeconds(2), w.ReadyAt);
        Assert.Equal(WorkerState.Ready, w.State);

        var stopped = Fresh();
        stopped.Stop(T0, StopReason.Reload);
        Assert.False(stopped.MarkReady(T0.AddSeconds(1))); // a stopping worker never becomes ready again
        Assert.Equal(WorkerState.Stopping, stopped.State);
    }

    [Fact]
    public void A_message_read_late_does_not_move_last_seen_back()
    {
        var w = Fresh();
        w.Heard(T0.AddSeconds(10));
        w.Heard(T0.AddSeconds(4));
        Assert.Equal(T0.AddSeconds(10), w.LastSeen);
        Assert.True(w.HeardFrom);
    }

    [Fact]
    public void Retire_once_only_while_serving_and_only_for_a_recycle_reason()
    {
        var w = Fresh();
        Assert.True(w.Retire(StopReason.OutOfMemory));
        Assert.False(w.Retire(StopReason.MaxRequests));
        Assert.Equal(StopReason.OutOfMemory, w.RetireReason);

        var stopping = Fresh();
        stopping.Stop(T0, StopReason.ScaledDown);
        Assert.False(stopping.Retire(StopReason.MaxRequests));
        Assert.False(stopping.Retiring);

        Assert.Throws<ArgumentOutOfRangeException>(() => Fresh().Retire(StopReason.Timeout));
    }

    [Fact]
    public void Stop_and_time_out_record_when_and_why()
    {
        var w = Fresh();
        w.MarkReady(T0);
        w.Stop(T0.AddSeconds(3), StopReason.CtlKill);
        Assert.Equal((WorkerState.Stopping, T0.AddSeconds(3), StopReason.CtlKill), (w.State, w.SignalledAt, w.StopReason));
        Assert.False(w.IsServing);

        var hung = Fresh();
        hung.MarkReady(T0);
        hung.TimeOut(T0.AddSeconds(40), TimeSpan.FromSeconds(30));
        Assert.Equal((WorkerState.Killing, T0.AddSeconds(40), StopReason.Timeout), (hung.State, hung.SignalledAt, hung.StopReason));
        Assert.False(hung.BootTimedOut);

        var slow = Fresh();
        slow.NoteError("Redis ping failed");
        slow.TimeOut(T0.AddSeconds(31), TimeSpan.FromSeconds(30));
        Assert.True(slow.BootTimedOut);
        Assert.Equal("Redis ping failed", slow.LastError); // its own error says more than the timeout
        Assert.False(slow.KillSent);
        slow.NoteKillSent();
        Assert.True(slow.KillSent);
    }
}
