using Corral.Agent.Admission;
using Corral.Agent.Contract;

namespace Corral.Tests;

/// <summary>When the agent tells the master its thread pool is starved: once per episode.</summary>
public sealed class StarvationEpisodesTests
{
    private const long Threshold = 1000;

    [Fact]
    public void Short_waits_are_no_episode()
    {
        var e = new StarvationEpisodes();
        for (var t = 0L; t < 10_000; t += 25)
        {
            Assert.Null(e.Observe(t % 900, t));
        }
        Assert.False(e.InEpisode);
    }

    [Fact]
    public void An_episode_is_reported_once_when_the_wait_reaches_the_threshold_while_the_probe_still_waits()
    {
        var e = new StarvationEpisodes();
        Assert.Null(e.Observe(975, 0));
        Assert.Equal(Threshold, e.Observe(Threshold, 25));
        // The same probe waits on, then more probes wait long: the same episode.
        for (var t = 50L; t < 5000; t += 25)
        {
            Assert.Null(e.Observe(Threshold + t, t));
        }
        Assert.True(e.InEpisode);
    }

    [Fact]
    public void An_episode_ends_after_a_calm_and_the_next_one_is_reported_again()
    {
        var e = new StarvationEpisodes();
        Assert.NotNull(e.Observe(1200, 0));
        var calm = (long)StarvationEpisodes.CalmToEnd.TotalMilliseconds;
        // A calm moment shorter than CalmToEnd, then starved again: still one episode.
        Assert.Null(e.Observe(10, 100));
        Assert.Null(e.Observe(10, 100 + calm - 25));
        Assert.Null(e.Observe(1500, 100 + calm));
        Assert.True(e.InEpisode);
        // Waits between half the threshold and it do not count as calm.
        Assert.Null(e.Observe(600, 200 + calm));
        Assert.Null(e.Observe(600, 200 + (3 * calm)));
        Assert.True(e.InEpisode);
        Assert.Null(e.Observe(10, 300 + (3 * calm)));
        Assert.Null(e.Observe(10, 300 + (4 * calm)));
        Assert.False(e.InEpisode);
        Assert.Equal(1100, e.Observe(1100, 400 + (4 * calm)));
    }

    [Fact]
    public void The_starved_line_round_trips_with_and_without_what_is_served()
    {
        Assert.Equal("starved 1042", Protocol.FormatStarved(1042, null));
        Assert.Equal(new Message(MessageKind.Starved, BusyMs: 1042), Protocol.Parse("starved 1042"));
        var line = Protocol.FormatStarved(1500, "GET /a\nPOST /b");
        Assert.Equal("starved 1500 GET /a | POST /b", line);
        Assert.Equal(new Message(MessageKind.Starved, BusyMs: 1500, Text: "GET /a | POST /b"), Protocol.Parse(line));
        Assert.Null(Protocol.Parse("starved"));
        Assert.Null(Protocol.Parse("starved -5"));
        Assert.Null(Protocol.Parse("starved x y"));
    }
}
