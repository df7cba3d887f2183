using Corral.Agent;

namespace Corral.Tests;

/// <summary>The async class's thread-pool guard: when it raises the pool's minimum, and when it gives it back.</summary>
public sealed class StarvationPolicyTests
{
    private static readonly TimeSpan Tick = StarvationPolicy.Interval;

    [Fact]
    public void BlockedPoolIsRaisedToItsThreadsPlusTheQueueAfterThreeStalledIntervals()
    {
        var policy = new StarvationPolicy(baseMin: 2, cap: 1002);
        Assert.Null(policy.Observe(0, pending: 8, threads: 2, Tick));
        Assert.Null(policy.Observe(0, pending: 8, threads: 2, Tick));
        Assert.Equal(10, policy.Observe(0, pending: 8, threads: 2, Tick));
        Assert.Equal(10, policy.Minimum);
    }

    [Fact]
    public void RaiseNeverPassesTheCap()
    {
        var policy = new StarvationPolicy(baseMin: 2, cap: 6);
        int? set = null;
        for (var i = 0; i < StarvationPolicy.StallsToRaise; i++)
        {
            set = policy.Observe(0, pending: 500, threads: 2, Tick);
        }
        Assert.Equal(6, set);
        Assert.Null(policy.Observe(0, pending: 500, threads: 6, Tick));
    }

    [Fact]
    public void OneQuietIntervalUnderLoadRaisesNothing()
    {
        // The old guard's mistake: one 25 ms window without a completion, by chance, raised the pool for good.
        var policy = new StarvationPolicy(baseMin: 2, cap: 1002);
        for (var i = 0; i < 100; i++)
        {
            Assert.Null(policy.Observe(0, pending: 3, threads: 2, Tick));
            Assert.Null(policy.Observe(0, pending: 3, threads: 2, Tick));
            Assert.Null(policy.Observe(40, pending: 3, threads: 2, Tick));
        }
        Assert.Equal(2, policy.Minimum);
    }

    [Fact]
    public void LateWakeUpIsAPausedProcessNotABlockedPool()
    {
        var policy = new StarvationPolicy(baseMin: 2, cap: 1002);
        for (var i = 0; i < 10; i++)
        {
            Assert.Null(policy.Observe(0, pending: 5, threads: 2, Tick * 3));
        }
        Assert.Equal(2, policy.Minimum);
    }

    [Fact]
    public void MinimumGoesBackAfterTenCalmSecondsAndUpAgainOnTheNextStall()
    {
        var policy = new StarvationPolicy(baseMin: 2, cap: 1002);
        for (var i = 0; i < StarvationPolicy.StallsToRaise; i++)
        {
            policy.Observe(0, pending: 10, threads: 2, Tick);
        }
        Assert.Equal(12, policy.Minimum);
        var calm = (int)(StarvationPolicy.CalmToLower / Tick);
        for (var i = 1; i < calm; i++)
        {
            Assert.Null(policy.Observe(5, pending: 0, threads: 12, Tick));
        }
        // A stall in between restarts the calm count.
        policy.Observe(0, pending: 1, threads: 12, Tick);
        for (var i = 1; i < calm; i++)
        {
            Assert.Null(policy.Observe(0, pending: 0, threads: 12, Tick));
        }
        Assert.Equal(2, policy.Observe(0, pending: 0, threads: 12, Tick));
        Assert.Null(policy.Observe(0, pending: 0, threads: 12, Tick));
        for (var i = 1; i < StarvationPolicy.StallsToRaise; i++)
        {
            Assert.Null(policy.Observe(0, pending: 4, threads: 12, Tick));
        }
        Assert.Equal(16, policy.Observe(0, pending: 4, threads: 12, Tick));
    }
}
