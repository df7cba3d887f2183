using System.Globalization;
using Corral.Agent.Contract;
using Corral.Control;
using Corral.Metrics;


namespace Corral.Tests;

/// <summary>
/// corral_worker_restarts_total by reason, from why the arbiter stopped each worker: the master's loop
/// (each event, then <see cref="Observatory.AfterEvent"/>) on an arbiter with fakes.
/// </summary>
public class RestartMetricsTests
{
    private static readonly TimeSpan S = TimeSpan.FromSeconds(1);

    /// <summary>The arbiter, the observatory and the ctl handlers, with the loop's "after every event".</summary>
    private sealed class Loop
    {
        /// <summary>Started, and every worker ready: the master has booted.</summary>
        public Loop(params string[] argv)
            : this(ready: true, argv)
        {
        }

        public Loop(bool ready, params string[] argv)
        {
            Rig = new ArbiterRig(argv);
            Observatory = new Observatory(new ListenQueue([]), new MasterMetrics());
            Ctl = new CtlHandlers(Rig.Arbiter, Observatory, Rig.Log);
            Rig.Arbiter.Start();
            if (ready)
            {
                ReadyAll();
            }
        }

        public ArbiterRig Rig { get; }
        public Observatory Observatory { get; }
        public CtlHandlers Ctl { get; }

        public void Do(Action evt)
        {
            evt();
            Observatory.AfterEvent(Rig.Arbiter);
        }

        public void Signal(int signal) => Do(() => Rig.Signal(signal));

        public void ReadyAll()
        {
            foreach (var pid in Rig.Booting)
            {
                Do(() => Rig.Ready(pid));
            }
        }

        /// <summary>Every worker sent a signal exits, one event each.</summary>
        public void ExitSignalled()
        {
            foreach (var w in Rig.Workers.Where(w => !w.IsServing).ToList())
            {
                Do(() => Rig.Exit(w.Pid, 128 + Rig.Host.SignalsTo(w.Pid).Last()));
            }
        }

        /// <summary>The counts by reason, as scraped, and as `corral ctl status` shows them: they must agree.</summary>
        public Dictionary<string, long> Restarts()
        {
            var text = Observatory.Metrics.ExportAsync(CancellationToken.None).GetAwaiter().GetResult();
            var scraped = MasterMetrics.RestartReasons.ToDictionary(r => r, r =>
            {
                var line = text.Split('\n').Single(l => l.StartsWith($"corral_worker_restarts_total{{reason=\"{r}\"}} ", StringComparison.Ordinal));
                return long.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture);
            });
            Assert.Equal(scraped, Observatory.Snapshot(Rig.Arbiter).Restarts);
            return scraped;
        }

        /// <summary>Only <paramref name="reason"/> counted, <paramref name="count"/> times (null: nothing counted).</summary>
        public void AssertOnly(string? reason, long count = 1) =>
            Assert.Equal(MasterMetrics.RestartReasons.ToDictionary(r => r, r => r == reason ? count : 0L), Restarts());
    }

    [Fact]
    public void A_crash_counts_as_crash()
    {
        var loop = new Loop("-w", "2");
        loop.Do(() => loop.Rig.Exit(loop.Rig.Pids[0], 1));
        loop.AssertOnly("crash");
    }

    [Fact]
    public void A_timeout_counts_as_timeout()
    {
        var loop = new Loop("-w", "1", "-t", "5");
        var hung = loop.Rig.Pids[0];
        for (var i = 0; i < 6 + Corral.Supervision.Arbiter.AbortGrace.TotalSeconds; i++)
        {
            loop.Do(() => loop.Rig.Tick(S));
        }
        Assert.True(loop.Rig.Worker(hung).KillSent);
        loop.Do(() => loop.Rig.Exit(hung, 128 + Signals.KILL));
        loop.AssertOnly("timeout");
    }

    [Fact]
    public void A_ctl_kill_counts_as_kill()
    {
        var loop = new Loop("-w", "2");
        loop.Do(() => loop.Ctl.Execute($"kill {loop.Rig.Pids[1]}"));
        loop.ExitSignalled();
        loop.AssertOnly("kill");
    }

    [Theory]
    [InlineData(null, "max-requests")]
    [InlineData(Protocol.OutOfMemory, "memory")]
    public void A_max_requests_recycle_counts_as_max_requests_and_an_out_of_memory_one_as_memory(string? text, string reason)
    {
        var loop = new Loop("-w", "2");
        loop.Do(() => loop.Rig.Arbiter.OnMessage(loop.Rig.Pids[0], new Message(MessageKind.Recycle, Text: text)));
        loop.ReadyAll();
        loop.ExitSignalled();
        loop.AssertOnly(reason);
    }

    [Fact]
    public void A_reload_counts_each_old_worker_as_reload()
    {
        var loop = new Loop("-w", "3");
        loop.Rig.NextConfig = loop.Rig.Config;
        loop.Signal(Signals.HUP);
        loop.ReadyAll();
        loop.ExitSignalled();
        loop.AssertOnly("reload", 3);
    }

    [Fact]
    public void A_boot_superseded_by_a_newer_reload_counts_as_reload()
    {
        var loop = new Loop("-w", "1");
        loop.Rig.NextConfig = loop.Rig.Config;
        loop.Signal(Signals.HUP);
        loop.Signal(Signals.HUP);
        loop.ExitSignalled(); // the first reload's worker, which never became ready
        loop.AssertOnly("reload");
    }

    [Fact]
    public void A_worker_retiring_when_a_reload_replaces_it_counts_as_max_requests()
    {
        var loop = new Loop("-w", "1");
        loop.Do(() => loop.Rig.Recycle(loop.Rig.Pids[0]));
        loop.Rig.NextConfig = loop.Rig.Config;
        loop.Signal(Signals.HUP); // its successor, still booting, is superseded: "reload"
        loop.ReadyAll();
        loop.ExitSignalled();
        Assert.Equal(1, loop.Restarts()["max-requests"]);
        Assert.Equal(1, loop.Restarts()["reload"]);
    }

    [Fact]
    public void A_retiring_worker_stopped_by_winch_still_counts_as_max_requests()
    {
        var loop = new Loop("-w", "2");
        loop.Do(() => loop.Rig.Recycle(loop.Rig.Pids[0]));
        loop.Signal(Signals.WINCH);
        loop.ExitSignalled();
        loop.AssertOnly("max-requests");
    }

    [Fact]
    public void Scaling_down_and_winch_are_not_restarts()
    {
        var loop = new Loop("-w", "3");
        loop.Signal(Signals.TTOU);
        loop.Do(() => loop.Ctl.Execute("remove 1"));
        loop.ExitSignalled();
        loop.AssertOnly(null);

        loop.Signal(Signals.WINCH);
        loop.ExitSignalled();
        loop.AssertOnly(null);
    }

    /// <summary>
    /// WINCH in the middle of a reload parks the old workers too: no reload replaces them. (Before the
    /// arbiter recorded its reasons, they counted as "reload": their generation was the older one.)
    /// </summary>
    [Fact]
    public void Winch_during_a_reload_is_not_a_restart()
    {
        var loop = new Loop("-w", "2");
        loop.Rig.NextConfig = loop.Rig.Config;
        loop.Signal(Signals.HUP);
        loop.Signal(Signals.WINCH);
        loop.ExitSignalled();
        Assert.Equal(4, loop.Rig.Arbiter.ExitCount);
        loop.AssertOnly(null);
    }

    /// <summary>
    /// A worker that fails to boot counts as a crash; the siblings a failed reload stops are not
    /// replaced, nor is a worker scaled down after it. (Before the
    /// arbiter recorded its reasons, that scale-down counted as "reload": its generation was older than
    /// the failed one.)
    /// </summary>
    [Fact]
    public void A_failed_reload_counts_only_its_failed_boot_and_a_scale_down_after_it_nothing()
    {
        var loop = new Loop("-w", "3");
        loop.Rig.NextConfig = loop.Rig.Config;
        loop.Signal(Signals.HUP);
        loop.Do(() => loop.Rig.Exit(loop.Rig.Booting[0], 1)); // the new app cannot boot: its siblings go too
        loop.ExitSignalled();
        loop.AssertOnly("crash"); // the one that failed to boot; not its siblings

        loop.Signal(Signals.TTOU);
        loop.ExitSignalled();
        loop.AssertOnly("crash");
    }

    [Fact]
    public void Nothing_counts_once_the_master_stops_not_even_a_crash()
    {
        var loop = new Loop("-w", "3");
        loop.Do(() => loop.Ctl.Execute($"kill {loop.Rig.Pids[0]}"));
        loop.Signal(Signals.TERM);
        loop.ExitSignalled();
        Assert.True(loop.Rig.Arbiter.Finished);
        loop.AssertOnly(null);

        // The first boot failing halts the master: the worker's exit is not a restart either.
        var halted = new Loop(ready: false, "-w", "2");
        halted.Do(() => halted.Rig.Ready(halted.Rig.Pids[1]));
        halted.Do(() => halted.Rig.Exit(halted.Rig.Pids[0], 1));
        Assert.True(halted.Rig.Arbiter.Stopping);
        halted.AssertOnly(null);
    }

    [Fact]
    public void Every_reason_counts_and_the_counts_add_up()
    {
        var loop = new Loop("-w", "2", "-t", "5");
        loop.Do(() => loop.Rig.Exit(loop.Rig.Pids[0], 1));
        loop.ReadyAll();
        loop.Do(() => loop.Ctl.Execute($"kill {loop.Rig.Pids[0]}"));
        loop.ReadyAll();
        loop.ExitSignalled();
        loop.Do(() => loop.Rig.Recycle(loop.Rig.Pids[0]));
        loop.ReadyAll();
        loop.ExitSignalled();
        loop.Rig.NextConfig = loop.Rig.Config;
        loop.Signal(Signals.HUP);
        loop.ReadyAll();
        loop.ExitSignalled();

        Assert.Equal(new Dictionary<string, long> { ["max-requests"] = 1, ["memory"] = 0, ["lifetime"] = 0, ["deadline"] = 0, ["timeout"] = 0, ["crash"] = 1, ["reload"] = 2, ["kill"] = 1 }, loop.Restarts());
    }
}
