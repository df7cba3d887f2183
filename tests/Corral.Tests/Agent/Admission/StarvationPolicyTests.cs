using Corral.Agent.Admission;


namespace Corral.Tests;

/// <summary>The async class's thread-pool guard: when it raises the pool's minimum, and when it gives it back.</summary>
public sealed class StarvationPolicyTests
{
    private static readonly TimeSpan Tick = StarvationPolicy.Interval;
    private static readonly int CalmTicks = (int)(StarvationPolicy.CalmToLower / Tick);

    /// <summary>The pool as the guard sees it: its minimum changes only when the policy (or the "app") sets it.</summary>
    private sealed class Pool(int minimum, int cap = 1002)
    {
        public StarvationPolicy Policy { get; } = new(cap);
        public int Minimum { get; set; } = minimum;

        public int? Observe(long completed, long pending, int threads, TimeSpan? elapsed = null)
        {
            var set = Policy.Observe(completed, pending, threads, elapsed ?? Tick, Minimum);
            if (set is { } m)
            {
                Minimum = m;
            }
            return set;
        }

        public void Stall(int pending, int threads)
        {
            for (var i = 0; i < StarvationPolicy.StallsToRaise; i++)
            {
                Observe(0, pending, threads);
            }
        }
    }

    [Fact]
    public void BlockedPoolIsRaisedToItsThreadsPlusTheQueueAfterThreeStalledIntervals()
    {
        var pool = new Pool(minimum: 2);
        Assert.Null(pool.Observe(0, pending: 8, threads: 2));
        Assert.Null(pool.Observe(0, pending: 8, threads: 2));
        Assert.Equal(10, pool.Observe(0, pending: 8, threads: 2));
    }

    [Fact]
    public void RaiseNeverPassesTheCap()
    {
        var pool = new Pool(minimum: 2, cap: 6);
        pool.Stall(pending: 500, threads: 2);
        Assert.Equal(6, pool.Minimum);
        Assert.Null(pool.Observe(0, pending: 500, threads: 6));
    }

    [Fact]
    public void QuietIntervalsUnderLoadRaiseNothing()
    {
        // The old guard's mistake: one 25 ms window without a completion, by chance, raised the pool for good.
        var pool = new Pool(minimum: 2);
        for (var i = 0; i < 100; i++)
        {
            Assert.Null(pool.Observe(0, pending: 3, threads: 2));
            Assert.Null(pool.Observe(0, pending: 3, threads: 2));
            Assert.Null(pool.Observe(40, pending: 3, threads: 2));
        }
        Assert.Equal(2, pool.Minimum);
    }

    [Fact]
    public void LateWakeUpIsAPausedProcessNotABlockedPool()
    {
        var pool = new Pool(minimum: 2);
        for (var i = 0; i < 10; i++)
        {
            Assert.Null(pool.Observe(0, pending: 5, threads: 2, Tick * 3));
        }
        Assert.Equal(2, pool.Minimum);
    }

    [Fact]
    public void MinimumGoesBackAfterTenCalmSecondsAndUpAgainOnTheNextStall()
    {
        var pool = new Pool(minimum: 2);
        pool.Stall(pending: 10, threads: 2);
        Assert.Equal(12, pool.Minimum);
        for (var i = 1; i < CalmTicks; i++)
        {
            Assert.Null(pool.Observe(5, pending: 0, threads: 12));
        }
        // A stall in between restarts the calm count.
        pool.Observe(0, pending: 1, threads: 12);
        for (var i = 1; i < CalmTicks; i++)
        {
            Assert.Null(pool.Observe(0, pending: 0, threads: 12));
        }
        Assert.Equal(2, pool.Observe(0, pending: 0, threads: 12));
        Assert.Null(pool.Observe(0, pending: 0, threads: 12));
        pool.Stall(pending: 4, threads: 12);
        Assert.Equal(16, pool.Minimum);
    }

    [Fact]
    public void AnAppsOwnMinimumIsKept()
    {
        // An app that sets its own minimum (common advice for blocking code) above the starving point: never lowered.
        var pool = new Pool(minimum: 200);
        pool.Stall(pending: 50, threads: 100);
        Assert.Equal(200, pool.Minimum);

        // Raised above the app's, the pool goes back to the app's value, not to the runtime's default.
        pool.Stall(pending: 150, threads: 200);
        Assert.Equal(350, pool.Minimum);
        for (var i = 0; i < CalmTicks; i++)
        {
            pool.Observe(9, pending: 0, threads: 350);
        }
        Assert.Equal(200, pool.Minimum);

        // Changed by the app after a raise: the app's value stays.
        pool.Stall(pending: 10, threads: 200);
        Assert.Equal(210, pool.Minimum);
        pool.Minimum = 64;
        for (var i = 0; i < CalmTicks * 2; i++)
        {
            Assert.Null(pool.Observe(9, pending: 0, threads: 210));
        }
        Assert.Equal(64, pool.Minimum);
    }
}
