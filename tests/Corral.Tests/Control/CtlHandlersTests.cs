using System.Text.Json;
using Corral.Agent.Contract;
using Corral.Control;
using Corral.Metrics;
using Corral.Supervision;


namespace Corral.Tests;

/// <summary>Each `corral ctl` command against an arbiter on fakes: what it asks of the arbiter and the JSON it answers.</summary>
public class CtlHandlersTests
{
    private static (ArbiterRig Rig, CtlHandlers Ctl) Booted(params string[] argv)
    {
        var rig = new ArbiterRig(argv).Booted();
        return (rig, new CtlHandlers(rig.Arbiter, new Observatory(new ListenQueue([]), new MasterMetrics()), rig.Log));
    }

    private static string Error(string text) => JsonSerializer.Serialize(new { ok = false, error = text });

    [Fact]
    public void Status_answers_the_snapshot()
    {
        var (rig, ctl) = Booted("-w", "2");
        using var reply = JsonDocument.Parse(ctl.Execute("status"));
        var root = reply.RootElement;
        Assert.True(root.GetProperty("ok").GetBoolean());
        Assert.Equal("", root.GetProperty("message").GetString());
        var status = root.GetProperty("status");
        Assert.Equal(2, status.GetProperty("desired_workers").GetInt32());
        Assert.Equal(rig.Pids, status.GetProperty("workers").EnumerateArray().Select(w => w.GetProperty("pid").GetInt32()).Order());
        Assert.All(status.GetProperty("workers").EnumerateArray(), w => Assert.Equal("ready", w.GetProperty("state").GetString()));
    }

    [Fact]
    public void Add_n_wants_n_more_workers_at_once_with_one_log_line()
    {
        var (rig, ctl) = Booted("-w", "2");
        Assert.Equal("""{"ok":true,"message":"workers wanted: 5"}""", ctl.Execute("add 3"));
        Assert.Equal(5, rig.Arbiter.DesiredWorkers);
        Assert.Equal(3, rig.Booting.Length);
        Assert.Single(rig.Log.Lines, l => l == ("info", "Workers wanted: 5 (asked on the control socket)"));
        Assert.DoesNotContain(rig.Log.Lines, l => l.Text.StartsWith("Handling signal", StringComparison.Ordinal));
    }

    [Fact]
    public void Remove_n_drains_the_oldest_and_keeps_at_least_one()
    {
        var (rig, ctl) = Booted("-w", "3");
        var (oldest, next, newest) = (rig.Pids[0], rig.Pids[1], rig.Pids[2]);
        Assert.Equal("""{"ok":true,"message":"workers wanted: 2"}""", ctl.Execute("remove 1"));
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(oldest));
        Assert.Equal(StopReason.ScaledDown, rig.Worker(oldest).StopReason);

        Assert.Equal("""{"ok":true,"message":"workers wanted: 1"}""", ctl.Execute("remove  7")); // extra spaces are fine
        Assert.Equal(StopReason.ScaledDown, rig.Worker(next).StopReason);
        Assert.Equal([newest], rig.ServingPids);
        Assert.True(rig.Log.Has("info", "Workers wanted: 1 (asked on the control socket)"));
    }

    [Theory]
    [InlineData("add zero", "add: N must be a whole number from 1 to 1024, not 'zero'")]
    [InlineData("add 0", "add: N must be a whole number from 1 to 1024, not '0'")]
    [InlineData("add 1025", "add: N must be a whole number from 1 to 1024, not '1025'")]
    [InlineData("remove -1", "remove: N must be a whole number from 1 to 1024, not '-1'")]
    [InlineData("remove +1", "remove: N must be a whole number from 1 to 1024, not '+1'")]
    [InlineData("kill me", "kill: PID must be a number, not 'me'")]
    [InlineData("kill 4242", "kill: 4242 is not a serving worker of this master")]
    [InlineData("explode", "unknown command 'explode': expected status, add N, remove N, reload or kill PID")]
    [InlineData("status now", "unknown command 'status now': expected status, add N, remove N, reload or kill PID")]
    [InlineData("add", "unknown command 'add': expected status, add N, remove N, reload or kill PID")]
    [InlineData("", "unknown command '': expected status, add N, remove N, reload or kill PID")]
    public void A_bad_command_is_an_error_and_changes_nothing(string command, string error)
    {
        var (rig, ctl) = Booted("-w", "2");
        Assert.Equal(Error(error), ctl.Execute(command));
        Assert.Equal(2, rig.Arbiter.DesiredWorkers);
        Assert.Equal(2, rig.Host.Spawned.Count);
        Assert.Empty(rig.Host.Sent);
    }

    [Fact]
    public void Kill_pid_drains_that_worker_and_replaces_it()
    {
        var (rig, ctl) = Booted("-w", "2");
        var victim = rig.Pids[1];
        Assert.Equal($$"""{"ok":true,"message":"worker {{victim}}: sent TERM; it drains and is replaced"}""", ctl.Execute($"kill {victim}"));
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(victim));
        Assert.Equal(StopReason.CtlKill, rig.Worker(victim).StopReason);
        Assert.Single(rig.Booting);

        // Once it drains it is no longer a serving worker: a second kill is refused.
        Assert.Equal(Error($"kill: {victim} is not a serving worker of this master"), ctl.Execute($"kill {victim}"));
    }

    [Fact]
    public void Reload_is_a_hup()
    {
        var (rig, ctl) = Booted("-w", "2");
        rig.NextConfig = rig.Config;
        Assert.Equal("""{"ok":true,"message":"reloading: new workers boot, then the old ones drain"}""", ctl.Execute("reload"));
        Assert.True(rig.Log.Has("info", "Handling signal: hup"));
        Assert.Equal(2, rig.Booting.Length);
    }

    [Fact]
    public void While_the_master_stops_add_remove_and_kill_are_refused()
    {
        var (rig, ctl) = Booted("-w", "2");
        var pid = rig.Pids[0];
        rig.Signal(Signals.TERM);
        var sent = rig.Host.Sent.Count;

        Assert.Equal(Error("the master is stopping"), ctl.Execute("add 1"));
        Assert.Equal(Error("the master is stopping"), ctl.Execute("remove 1"));
        Assert.Equal(Error($"kill: {pid} is not a serving worker of this master"), ctl.Execute($"kill {pid}"));
        Assert.Equal(Error("add: N must be a whole number from 1 to 1024, not 'x'"), ctl.Execute("add x")); // N is checked first
        Assert.Equal(2, rig.Arbiter.DesiredWorkers);
        Assert.Equal(sent, rig.Host.Sent.Count);
        using var status = JsonDocument.Parse(ctl.Execute("status"));
        Assert.True(status.RootElement.GetProperty("status").GetProperty("stopping").GetBoolean());
    }
}
