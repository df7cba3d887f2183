using Corral.Agent.Admission;

namespace Corral.Tests;

/// <summary>
/// --accept-policy pack's decisions with made-up times (as Puma's test of its accept-loop delay): a
/// follower leaves a connection to the leader unless it has waited <see cref="AcceptPackingPolicy.Patience"/>.
/// </summary>
public sealed class AcceptPackingPolicyTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [Fact]
    public void A_follower_takes_a_connection_only_once_the_queue_has_stayed_non_empty_for_Patience()
    {
        var policy = new AcceptPackingPolicy();
        for (var t = 0; t < 10; t++)
        {
            Assert.False(policy.ShouldAccept(queued: true, Ms(t)), $"at {t} ms");
        }
        Assert.False(policy.ShouldAccept(queued: true, Ms(9.9)));
        Assert.True(policy.ShouldAccept(queued: true, Ms(10)));
    }

    [Fact]
    public void A_worker_at_its_cap_waits_100_ms_while_another_leads_and_10_ms_when_none_does()
    {
        // --pack-leader-connections: the worker that just handed the lead on leaves the next
        // connections to the new leader even when that one is slow to get a core.
        Assert.Equal(Ms(100), AcceptPackingPolicy.PatienceFor(atCap: true, anotherLeads: true));
        // Every worker at its cap (no one leads), or a follower under its cap: the usual 10 ms.
        Assert.Equal(Ms(10), AcceptPackingPolicy.PatienceFor(atCap: true, anotherLeads: false));
        Assert.Equal(Ms(10), AcceptPackingPolicy.PatienceFor(atCap: false, anotherLeads: true));
        Assert.Equal(Ms(10), AcceptPackingPolicy.PatienceFor(atCap: false, anotherLeads: false));

        var policy = new AcceptPackingPolicy();
        var atCap = AcceptPackingPolicy.PatienceFor(atCap: true, anotherLeads: true);
        Assert.False(policy.ShouldAccept(queued: true, Ms(0), atCap));
        Assert.False(policy.ShouldAccept(queued: true, Ms(50), atCap));
        Assert.False(policy.ShouldAccept(queued: true, Ms(99), atCap));
        Assert.True(policy.ShouldAccept(queued: true, Ms(100), atCap));
    }

    [Fact]
    public void The_wait_counts_from_the_first_look_that_saw_a_connection_not_from_the_start()
    {
        var policy = new AcceptPackingPolicy();
        Assert.False(policy.ShouldAccept(queued: false, Ms(0)));
        var seen = TimeSpan.FromHours(1);
        Assert.False(policy.ShouldAccept(queued: true, seen));
        Assert.False(policy.ShouldAccept(queued: true, seen + Ms(9)));
        Assert.True(policy.ShouldAccept(queued: true, seen + Ms(10)));
    }

    [Fact]
    public void A_look_that_finds_the_queue_empty_starts_the_wait_again()
    {
        // The leader emptied the queue at 9 ms: the connections seen from 10 ms are new ones.
        var policy = new AcceptPackingPolicy();
        for (var t = 0; t <= 8; t++)
        {
            Assert.False(policy.ShouldAccept(queued: true, Ms(t)));
        }
        Assert.False(policy.ShouldAccept(queued: false, Ms(9)));
        for (var t = 10; t <= 19; t++)
        {
            Assert.False(policy.ShouldAccept(queued: true, Ms(t)), $"at {t} ms");
        }
        Assert.True(policy.ShouldAccept(queued: true, Ms(20)));
    }

    [Fact]
    public void A_follower_looks_every_100_ms_while_the_queue_is_empty_and_without_waiting_while_a_connection_waits()
    {
        var policy = new AcceptPackingPolicy();
        Assert.Equal(Ms(100), policy.NextLook);
        policy.ShouldAccept(queued: false, Ms(100));
        Assert.Equal(Ms(100), policy.NextLook);
        policy.ShouldAccept(queued: true, Ms(150));
        Assert.Equal(TimeSpan.Zero, policy.NextLook);
        policy.ShouldAccept(queued: false, Ms(155));
        Assert.Equal(Ms(100), policy.NextLook);
    }

    [Theory]
    [InlineData(true, false, true)]
    [InlineData(false, false, false)] // still booting (or warming up): not yet
    [InlineData(true, true, false)] // draining: another worker leads from its next accept
    [InlineData(false, true, false)]
    public void Only_a_ready_worker_that_is_not_draining_may_lead(bool ready, bool draining, bool mayLead) =>
        Assert.Equal(mayLead, AcceptPackingPolicy.MayLead(ready, draining));

    [Theory]
    [InlineData(0, 0, true)] // no cap
    [InlineData(5000, 0, true)]
    [InlineData(15, 16, true)]
    [InlineData(16, 16, false)] // at the cap: another worker leads
    [InlineData(40, 16, false)]
    public void A_worker_holding_the_cap_of_connections_does_not_lead(int open, int cap, bool mayLead)
    {
        Assert.Equal(mayLead, AcceptPackingPolicy.MayLead(ready: true, draining: false, open, cap));
        Assert.Equal(!mayLead, AcceptPackingPolicy.AtCap(open, cap));
        Assert.False(AcceptPackingPolicy.MayLead(ready: false, draining: false, open, cap));
        Assert.False(AcceptPackingPolicy.MayLead(ready: true, draining: true, open, cap));
    }

    /// <summary>
    /// A follower as <see cref="AcceptPacking"/> runs it, against a made-up queue: looks that wait up
    /// to <see cref="AcceptPackingPolicy.NextLook"/> for a connection, a pause of
    /// <see cref="AcceptPackingPolicy.Pace"/> after each look that saw one. Returns when it takes a
    /// connection, or null if it has not by <paramref name="until"/>.
    /// </summary>
    private static TimeSpan? FollowerTakesAt(Func<TimeSpan, bool> queuedAt, TimeSpan until)
    {
        var policy = new AcceptPackingPolicy();
        var now = TimeSpan.Zero;
        var step = Ms(0.1);
        while (now < until)
        {
            var lookStarts = now;
            var lookEnds = now + policy.NextLook;
            while (!queuedAt(now) && now < lookEnds)
            {
                now += step; // poll(2) returns as soon as a connection is there
            }
            var queued = queuedAt(now);
            if (policy.ShouldAccept(queued, now))
            {
                return now;
            }
            if (queued)
            {
                now += AcceptPackingPolicy.Pace;
            }
            else if (now == lookStarts)
            {
                now += step; // no look takes no time at all
            }
        }
        return null;
    }

    [Fact]
    public void A_burst_the_leader_accepts_within_Patience_is_left_to_it()
    {
        // A client opens its pool at 20 ms and every 50 ms after; the leader has them all within 8 ms.
        static bool Queued(TimeSpan t) => t.TotalMilliseconds % 50 is >= 20 and < 28;
        Assert.Null(FollowerTakesAt(Queued, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void A_connection_the_leader_leaves_is_taken_Patience_after_the_follower_saw_it()
    {
        // The leader is paused (a GC, SIGSTOP) from 230 ms: the connection arriving then stays queued.
        var taken = FollowerTakesAt(t => t >= Ms(230), TimeSpan.FromSeconds(1));
        Assert.NotNull(taken);
        Assert.InRange(taken.Value.TotalMilliseconds, 240, 242);
    }
}
