using System.Net.Sockets;
using System.Text;
using Corral.Agent;
using Corral.Agent.Contract;

namespace Corral.Tests;

/// <summary>
/// A master that did not run for a while (SIGSTOP, a debugger, a VM pause) judges its workers by what
/// they sent meanwhile, and a worker whose master does not read never blocks on its control socket.
/// </summary>
public sealed class MasterStallTests
{
    private static readonly TimeSpan S = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Half = TimeSpan.FromMilliseconds(500);

    /// <summary>The heartbeats a worker sent every 0.5 s while the master was stopped for <paramref name="stall"/>, oldest first.</summary>
    private static void QueuedHeartbeats(ArbiterRig rig, int pid, TimeSpan stall)
    {
        for (var ago = stall - Half; ago >= TimeSpan.Zero; ago -= Half)
        {
            rig.Heartbeat(pid, sentAgo: ago);
        }
    }

    [Fact]
    public void A_master_stopped_longer_than_the_timeout_kills_no_worker_whose_heartbeats_wait_unread()
    {
        var rig = new ArbiterRig("-w", "2", "-t", "5").Booted();
        rig.Run(S, Half, rig.HeartbeatAll);

        // Stopped for 20 s. On SIGCONT the timer's tick may reach the loop before the messages do.
        var stall = TimeSpan.FromSeconds(20);
        rig.Clock.Advance(stall);
        rig.Arbiter.Tick();
        Assert.Empty(rig.Host.Sent);
        Assert.True(rig.Log.Has("warning", "The master did not run for 20 s"));
        foreach (var pid in rig.Pids)
        {
            QueuedHeartbeats(rig, pid, stall);
        }

        rig.Run(TimeSpan.FromSeconds(10), Half, rig.HeartbeatAll);
        Assert.Empty(rig.Host.Sent);
        Assert.False(rig.Log.Has("critical", "WORKER TIMEOUT"));
        Assert.Equal(2, rig.Host.Spawned.Count);
    }

    [Fact]
    public void After_a_master_stall_a_worker_that_sent_nothing_meanwhile_is_killed_when_the_grace_ends()
    {
        var rig = new ArbiterRig("-w", "2", "-t", "5").Booted();
        var (hung, fine) = (rig.Pids[0], rig.Pids[1]);
        rig.Run(S, Half, rig.HeartbeatAll);

        var stall = TimeSpan.FromSeconds(20);
        rig.Clock.Advance(stall);
        rig.Arbiter.Tick();
        QueuedHeartbeats(rig, fine, stall);

        rig.Run(Corral.Supervision.Arbiter.StallGrace - Half, Half, () => rig.Heartbeat(fine));
        Assert.Empty(rig.Host.Sent);
        rig.Run(Half, Half, () => rig.Heartbeat(fine));
        Assert.True(rig.Log.Has("critical", $"WORKER TIMEOUT (pid:{hung})"));
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(hung));
        Assert.Empty(rig.Host.SignalsTo(fine));
    }

    [Fact]
    public void A_heartbeat_read_late_counts_from_when_it_was_sent()
    {
        // The worker's last heartbeat left it at 1 s and was read at 4 s: it has been silent since 1 s.
        var rig = new ArbiterRig("-w", "1", "-t", "5").Booted();
        var pid = rig.Pids[0];
        rig.Run(TimeSpan.FromSeconds(4), Half);
        rig.Heartbeat(pid, sentAgo: TimeSpan.FromSeconds(3));

        rig.Run(TimeSpan.FromSeconds(2), Half);
        Assert.Empty(rig.Host.Sent); // 5 s since it sent: not more than the timeout yet
        rig.Run(Half, Half);
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(pid));
    }

    [Fact]
    public void A_late_read_older_heartbeat_does_not_move_the_last_one_back()
    {
        var rig = new ArbiterRig("-w", "1", "-t", "5").Booted();
        var pid = rig.Pids[0];
        rig.Run(S, Half);
        rig.Heartbeat(pid);
        rig.Heartbeat(pid, sentAgo: TimeSpan.FromSeconds(4.5));
        rig.Run(TimeSpan.FromSeconds(4.5), Half);
        Assert.Empty(rig.Host.Sent);
    }

    [Theory]
    [InlineData(-3600.0, true)] // ahead of the master's clock
    [InlineData(3600.0, true)] // before the worker started
    [InlineData(0.0, false)] // no time at all
    public void A_heartbeat_time_that_cannot_be_counts_from_when_it_is_read(double agoSeconds, bool stamped)
    {
        var rig = new ArbiterRig("-w", "1", "-t", "5").Booted();
        var pid = rig.Pids[0];
        rig.Run(TimeSpan.FromSeconds(30), Half, () => rig.Heartbeat(pid, sentAgo: TimeSpan.FromSeconds(agoSeconds), stamped: stamped));
        Assert.Empty(rig.Host.Sent);
        rig.Run(TimeSpan.FromSeconds(5.5), Half);
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(pid));
    }

    [Theory]
    [InlineData("30", 14.5)] // less than half the timeout
    [InlineData("0", 600.0)] // no timeout: nothing to judge
    public void A_short_gap_between_ticks_is_no_stall(string timeout, double gapSeconds)
    {
        var rig = new ArbiterRig("-w", "1", "-t", timeout).Booted();
        rig.Tick(TimeSpan.FromSeconds(gapSeconds));
        Assert.False(rig.Log.Has("warning", "The master did not run"));
    }

    [Fact]
    public void A_stall_longer_than_half_the_timeout_defers_judging_and_says_so_once()
    {
        var rig = new ArbiterRig("-w", "1", "-t", "10").Booted();
        var pid = rig.Pids[0];
        rig.Tick(TimeSpan.FromSeconds(12)); // silent for more than the timeout, but the master did not run
        Assert.Single(rig.Log.Lines, l => l.Text.StartsWith("The master did not run for 12 s", StringComparison.Ordinal));
        Assert.Empty(rig.Host.Sent);
        rig.Run(Corral.Supervision.Arbiter.StallGrace - Half, Half);
        Assert.Empty(rig.Host.Sent);
        rig.Run(Half, Half); // it sent nothing meanwhile: judged once the grace is over
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(pid));
        Assert.Single(rig.Log.Lines, l => l.Text.StartsWith("The master did not run", StringComparison.Ordinal));
    }

    // ---- the wire --------------------------------------------------------------------------

    [Fact]
    public void A_heartbeat_carries_its_send_time()
    {
        var line = Protocol.FormatHeartbeat(7, 2, 150, 123456789);
        Assert.Equal("hb 7 2 150 123456789", line);
        Assert.Equal(new Message(MessageKind.Heartbeat, 7, 2, 150, SentMs: 123456789), Protocol.Parse(line));
    }

    [Theory]
    [InlineData("hb 7 2 150")] // protocol 1: the agent refuses to run under this master
    [InlineData("hb 7 2 150 x")]
    [InlineData("hb 7 2 150 -5")]
    [InlineData("hb 7 2 150 1 2")]
    public void A_malformed_heartbeat_is_ignored(string line) => Assert.Null(Protocol.Parse(line));

    [Fact]
    public void Monotonic_milliseconds_do_not_overflow_after_years_of_uptime()
    {
        var tenYearsNs = 10L * 365 * 24 * 3600 * 1_000_000_000;
        Assert.Equal(tenYearsNs / 1_000_000, Protocol.MonotonicMs(tenYearsNs, 1_000_000_000));
    }

    // ---- the worker's end of the control socket ---------------------------------------------

    [Fact]
    public void A_full_control_socket_blocks_no_sender_coalesces_heartbeats_and_keeps_ready_error_and_recycle()
    {
        var (master, worker) = Corral.Os.Native.SocketPair();
        using var masterEnd = new Socket(new SafeSocketHandle(master, ownsHandle: true));
        var channel = new ControlChannel(worker);

        // Nobody reads: far more lines than the socket holds, each returning at once.
        var started = Environment.TickCount64;
        for (var i = 0; i < 1000; i++)
        {
            channel.Send(Coalesced.Heartbeat, $"hb {i} 0 0 {i + 1}");
            channel.Send(Coalesced.Stats, $"stats {{\"n\":{i}}}");
            if (i == 500)
            {
                channel.Send(Protocol.Ready);
            }
        }
        channel.Send(Protocol.FormatError("a long one: " + new string('x', 40_000)));
        channel.Send(Protocol.Recycle);
        Assert.True(Environment.TickCount64 - started < 2000, "sending to a full socket blocked");

        // The master reads again; the next heartbeat sends what waited, then itself.
        var lines = new List<string>();
        var text = new StringBuilder();
        var buffer = new byte[65536];
        masterEnd.ReceiveTimeout = 200;
        var deadline = Environment.TickCount64 + 10_000;
        while (!lines.Contains("hb 1000 0 0 1001") && Environment.TickCount64 < deadline)
        {
            channel.Send(Coalesced.Heartbeat, "hb 1000 0 0 1001");
            try
            {
                while (masterEnd.Available > 0 || masterEnd.Poll(50_000, SelectMode.SelectRead))
                {
                    var n = masterEnd.Receive(buffer);
                    text.Append(Encoding.UTF8.GetString(buffer, 0, n));
                }
            }
            catch (SocketException)
            {
            }
            var all = text.ToString();
            var end = all.LastIndexOf('\n');
            lines = [.. all[..(end + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries)];
        }

        Assert.All(lines, l => Assert.NotNull(Protocol.Parse(l))); // no torn line
        Assert.Single(lines, l => l == Protocol.Ready);
        Assert.Single(lines, l => l.StartsWith("error a long one: xxx", StringComparison.Ordinal) && l.Length == "error a long one: ".Length + 40_000);
        Assert.Single(lines, l => l == Protocol.Recycle);
        // In order: ready before the error, the error before recycle, and the newest heartbeat last.
        Assert.True(lines.IndexOf(Protocol.Ready) < lines.FindIndex(l => l.StartsWith("error", StringComparison.Ordinal)));
        Assert.True(lines.FindIndex(l => l.StartsWith("error", StringComparison.Ordinal)) < lines.IndexOf(Protocol.Recycle));
        Assert.Equal("hb 1000 0 0 1001", lines[^1]);
        // Coalesced: of 1000 heartbeats, those the socket held, then only the latest.
        Assert.True(lines.Count(l => l.StartsWith("hb ", StringComparison.Ordinal)) < 100, $"{lines.Count} lines");
    }
}
