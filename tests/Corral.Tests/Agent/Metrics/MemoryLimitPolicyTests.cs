using Corral.Agent.Metrics;

namespace Corral.Tests;

/// <summary>The worker's own judgement of --max-worker-memory: GC-aware, once, with fake readings.</summary>
public class MemoryLimitPolicyTests
{
    private const long Mi = 1L << 20;
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void Under_the_limit_nothing_happens()
    {
        var policy = new MemoryLimitPolicy(100 * Mi);
        Assert.Equal(MemoryVerdict.Nothing, policy.Judge(80 * Mi, S(1)));
        Assert.Equal(MemoryVerdict.Nothing, policy.Judge(100 * Mi, S(2)));
        Assert.Equal(MemoryVerdict.Nothing, policy.Judge(0, S(3))); // unreadable PSS
        Assert.False(policy.Recycling);
    }

    [Fact]
    public void Over_only_because_the_GC_has_not_run_is_not_recycled()
    {
        var policy = new MemoryLimitPolicy(100 * Mi);
        Assert.Equal(MemoryVerdict.Collect, policy.Judge(130 * Mi, S(1)));
        Assert.Equal(MemoryVerdict.Nothing, policy.AfterCollection(70 * Mi));
        Assert.False(policy.Recycling);
    }

    [Fact]
    public void Still_over_after_a_collection_recycles_once()
    {
        var policy = new MemoryLimitPolicy(100 * Mi);
        Assert.Equal(MemoryVerdict.Collect, policy.Judge(130 * Mi, S(1)));
        Assert.Equal(MemoryVerdict.Recycle, policy.AfterCollection(120 * Mi));
        Assert.True(policy.Recycling);
        Assert.Equal(MemoryVerdict.Nothing, policy.Judge(140 * Mi, S(10)));
        Assert.Equal(MemoryVerdict.Nothing, policy.AfterCollection(140 * Mi));
    }

    [Fact]
    public void Collections_are_spaced_even_when_the_worker_keeps_going_over()
    {
        var policy = new MemoryLimitPolicy(100 * Mi, S(5));
        Assert.Equal(MemoryVerdict.Collect, policy.Judge(130 * Mi, S(1)));
        Assert.Equal(MemoryVerdict.Nothing, policy.AfterCollection(90 * Mi)); // 40 MiB were garbage
        // Garbage again a second later (no more over than a collection frees): no collection every
        // second; the next look after the spacing collects.
        Assert.Equal(MemoryVerdict.Nothing, policy.Judge(110 * Mi, S(2)));
        Assert.Equal(MemoryVerdict.Nothing, policy.Judge(135 * Mi, S(5.9)));
        Assert.Equal(MemoryVerdict.Collect, policy.Judge(110 * Mi, S(6)));
        Assert.Equal(MemoryVerdict.Recycle, policy.AfterCollection(105 * Mi));
    }

    [Fact]
    public void A_leak_just_under_after_a_collection_is_recycled_without_waiting_for_the_next()
    {
        // Measured: 101 MiB, 98 MiB after the collection (3 MiB freed), then the leak went on.
        var policy = new MemoryLimitPolicy(100 * Mi, S(5));
        Assert.Equal(MemoryVerdict.Collect, policy.Judge(101 * Mi, S(1)));
        Assert.Equal(MemoryVerdict.Nothing, policy.AfterCollection(98 * Mi));
        Assert.Equal(MemoryVerdict.Nothing, policy.Judge(103 * Mi, S(2))); // within what a collection freed
        Assert.Equal(MemoryVerdict.Recycle, policy.Judge(110 * Mi, S(3)));
        Assert.True(policy.Recycling);
    }

    [Fact]
    public void No_limit_never_acts()
    {
        var policy = new MemoryLimitPolicy(0);
        Assert.Equal(MemoryVerdict.Nothing, policy.Judge(long.MaxValue, S(1)));
        Assert.Equal(MemoryVerdict.Nothing, policy.AfterCollection(long.MaxValue));
    }
}
