using Corral.Agent.Contract;
using Corral.Supervision;


namespace Corral.Tests;

/// <summary>The master's decisions, driven with a fake process host and a fake clock (Gunicorn's test_arbiter.py style).</summary>
public class ArbiterTests
{
    private static readonly TimeSpan S = TimeSpan.FromSeconds(1);

    // ---- boot and respawn ------------------------------------------------------------------

    [Fact]
    public void Start_spawns_the_configured_number_of_workers()
    {
        var rig = new ArbiterRig("-w", "3");
        rig.Arbiter.Start();
        Assert.Equal(3, rig.Host.Spawned.Count);
        Assert.Equal(rig.Host.Spawned.Order(), rig.Pids);
        Assert.All(rig.Workers, w => Assert.Equal(WorkerState.Booting, w.State));
        Assert.Equal(3, rig.Log.Lines.Count(l => l.Text.StartsWith("Booting worker with pid: ", StringComparison.Ordinal)));
        Assert.Empty(rig.Host.Sent);
    }

    [Fact]
    public void Start_honours_web_concurrency_through_the_config()
    {
        var config = Settings.Ok(Settings.Env(("WEB_CONCURRENCY", "2")), "App.dll");
        var host = new FakeProcessHost();
        var arbiter = new Corral.Supervision.Arbiter(config, host, new FakeClock(), new CapturingLog(), () => null);
        arbiter.Start();
        Assert.Equal(2, host.Spawned.Count);
    }

    [Fact]
    public void A_worker_that_exits_is_replaced()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var victim = rig.Pids[0];

        rig.Exit(victim, 1);

        Assert.Equal(3, rig.Host.Spawned.Count);
        Assert.DoesNotContain(victim, rig.Pids);
        Assert.Equal(2, rig.Pids.Length);
        Assert.True(rig.Log.Has("error", $"Worker (pid:{victim}) exited with code 1"));
        Assert.False(rig.Arbiter.Finished);
    }

    [Fact]
    public void A_worker_killed_by_sigkill_is_reported_as_perhaps_out_of_memory_and_replaced()
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        var victim = rig.Pids[0];
        rig.Exit(victim, 128 + Signals.KILL);
        Assert.True(rig.Log.Has("error", $"Worker (pid:{victim}) was sent SIGKILL! Perhaps out of memory?"));
        Assert.Equal(2, rig.Host.Spawned.Count);
    }

    [Fact]
    public void Exits_and_messages_of_unknown_pids_are_ignored()
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        rig.Exit(4242, 1);
        rig.Ready(4243);
        Assert.Single(rig.Host.Spawned);
        Assert.False(rig.Arbiter.Finished);
    }

    [Fact]
    public void The_first_boot_failing_halts_with_exit_code_3_and_the_workers_error()
    {
        var rig = new ArbiterRig("-w", "1");
        rig.Arbiter.Start();
        var pid = rig.Pids[0];

        rig.Error(pid, "Unhandled exception. System.Exception: Redis ping failed: connection refused");
        rig.Exit(pid, 1);

        Assert.True(rig.Arbiter.Finished);
        Assert.Equal(3, rig.Arbiter.ExitCode);
        Assert.Contains("Worker failed to boot.", rig.Arbiter.HaltReason);
        Assert.Contains("Redis ping failed: connection refused", rig.Arbiter.HaltReason);
        Assert.True(rig.Log.Has("error", "Reason: Worker failed to boot. Unhandled exception. System.Exception: Redis ping failed"));
        Assert.Single(rig.Host.Spawned); // no retry
    }

    [Fact]
    public void A_worker_that_exits_without_a_word_is_said_to_have_run_without_the_agent()
    {
        // A Native AOT app that does not link the agent runs no startup hook: it never speaks.
        var rig = new ArbiterRig("-w", "1");
        rig.Arbiter.Start();
        rig.Exit(rig.Pids[0], 134);

        Assert.Equal(3, rig.Arbiter.ExitCode);
        Assert.Contains("exit code 134, and corral's agent never started in it (a Native AOT app must link it in", rig.Arbiter.HaltReason);
    }

    [Fact]
    public void A_worker_the_agent_spoke_from_fails_with_its_exit_code_only()
    {
        var rig = new ArbiterRig("-w", "1");
        rig.Arbiter.Start();
        rig.Heartbeat(rig.Pids[0]);
        rig.Exit(rig.Pids[0], 1);

        Assert.Equal(3, rig.Arbiter.ExitCode);
        Assert.EndsWith("exit code 1", rig.Arbiter.HaltReason);
        Assert.DoesNotContain("agent", rig.Arbiter.HaltReason);
    }

    [Fact]
    public void The_first_boot_failing_stops_the_other_workers_and_finishes_once_they_exit()
    {
        var rig = new ArbiterRig("-w", "3");
        rig.Arbiter.Start();
        var (bad, others) = (rig.Pids[0], rig.Pids[1..]);
        rig.Ready(others[0]);

        rig.Exit(bad, 1);

        Assert.False(rig.Arbiter.Finished);
        Assert.Equal(3, rig.Arbiter.ExitCode);
        Assert.Contains("exit code 1", rig.Arbiter.HaltReason);
        foreach (var pid in others)
        {
            Assert.Equal([Signals.QUIT], rig.Host.SignalsTo(pid));
        }
        rig.ExitSignalled();
        Assert.True(rig.Arbiter.Finished);
        Assert.Equal(3, rig.Arbiter.ExitCode);
        Assert.Equal(3, rig.Host.Spawned.Count);
    }

    [Fact]
    public void A_spawn_that_fails_at_the_first_boot_halts()
    {
        var rig = new ArbiterRig("-w", "2");
        rig.Host.FailSpawnWith = "dotnet: No such file or directory";
        rig.Arbiter.Start();
        Assert.True(rig.Arbiter.Finished);
        Assert.Equal(3, rig.Arbiter.ExitCode);
        Assert.Contains("dotnet: No such file or directory", rig.Arbiter.HaltReason);
    }

    [Fact]
    public void After_the_first_boot_boot_failures_back_off_exponentially()
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        rig.Exit(rig.Pids[0], 1); // a worker that had booted dies: replaced at once
        Assert.Equal(2, rig.Host.Spawned.Count);
        var exitTimes = new List<DateTimeOffset>();

        // From now on the app crashes at start, every time: each worker exits before "ready".
        rig.Run(TimeSpan.FromSeconds(120), eachStep: () =>
        {
            foreach (var pid in rig.Booting)
            {
                rig.Exit(pid, 1);
                exitTimes.Add(rig.Clock.GetUtcNow());
            }
        });

        Assert.False(rig.Arbiter.Finished);
        // About 9 attempts in two minutes, not one per tick (1200).
        Assert.InRange(rig.Host.Spawned.Count, 9, 11);
        var delays = exitTimes.Zip(rig.Host.SpawnTimes.Skip(2), (exit, spawn) => (spawn - exit).TotalSeconds).ToList();
        double[] expected = [0.5, 1, 2, 4, 8, 16, 30, 30];
        for (var i = 0; i < Math.Min(delays.Count, expected.Length); i++)
        {
            Assert.True(delays[i] >= expected[i] - 0.001 && delays[i] <= expected[i] + 0.101, $"delays: {string.Join(", ", delays)}");
        }
        Assert.True(rig.Log.Has("warning", "Worker boot failed 3 time(s) in a row: next attempt in 2 s"));
        Assert.True(rig.Log.Has("error", "Worker failed to boot (pid:"));
    }

    [Fact]
    public void A_worker_that_boots_again_resets_the_back_off()
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        for (var i = 0; i < 4; i++)
        {
            rig.Exit(rig.Pids.Single(), 1);
            rig.Run(TimeSpan.FromSeconds(10));
        }
        // The first exit was of a booted worker (replaced at once); the next three were boot failures.
        Assert.True(rig.Log.Has("warning", "3 time(s) in a row"));
        rig.ReadyAll();
        rig.Exit(rig.Pids.Single(), 1);
        Assert.True(rig.Log.Has("warning", "1 time(s) in a row: next attempt in 0.5 s"));
    }

    [Fact]
    public void A_spawn_failure_after_the_first_boot_backs_off_instead_of_halting()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        rig.Host.FailSpawnWith = "too many open files";
        rig.Exit(rig.Pids[0], 1);
        Assert.False(rig.Arbiter.Finished);
        Assert.True(rig.Log.Has("error", "Can't start a worker: too many open files"));
        rig.Host.FailSpawnWith = null;
        rig.Run(TimeSpan.FromSeconds(1));
        Assert.Equal(2, rig.Pids.Length);
    }

    // ---- timeouts ----------------------------------------------------------------------------

    [Fact]
    public void A_silent_worker_is_aborted_then_killed_and_replaced()
    {
        var rig = new ArbiterRig("-w", "2", "-t", "30").Booted();
        var (hung, fine) = (rig.Pids[0], rig.Pids[1]);

        rig.Run(TimeSpan.FromSeconds(30), S, () => rig.Heartbeat(fine));
        Assert.Empty(rig.Host.Sent); // exactly the timeout is not yet too long
        rig.Run(TimeSpan.FromSeconds(1), S, () => rig.Heartbeat(fine));

        Assert.True(rig.Log.Has("critical", $"WORKER TIMEOUT (pid:{hung})"));
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(hung));
        Assert.Equal(WorkerState.Killing, rig.Worker(hung).State);
        Assert.Equal(3, rig.Host.Spawned.Count); // the replacement starts at once

        rig.Tick(Corral.Supervision.Arbiter.AbortGrace - TimeSpan.FromMilliseconds(1));
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(hung));
        rig.Tick(TimeSpan.FromMilliseconds(1));
        Assert.Equal([Signals.ABRT, Signals.KILL], rig.Host.SignalsTo(hung));

        rig.Exit(hung, 128 + Signals.KILL);
        Assert.Equal(3, rig.Host.Spawned.Count); // no second replacement
        Assert.Empty(rig.Host.SignalsTo(fine));
        Assert.False(rig.Log.Has("error", $"Worker (pid:{hung}) was sent SIGKILL"));
    }

    [Fact]
    public void A_worker_not_ready_within_the_timeout_is_aborted_and_replaced()
    {
        var rig = new ArbiterRig("-w", "1", "-t", "10");
        rig.Arbiter.Start();
        var slow = rig.Pids[0];

        rig.Run(TimeSpan.FromSeconds(10), S, () => rig.Heartbeat(slow)); // heartbeats do not make it ready
        Assert.Empty(rig.Host.Sent);
        rig.Tick(S);

        Assert.True(rig.Log.Has("critical", $"WORKER TIMEOUT (pid:{slow})"));
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(slow));
        Assert.Equal(2, rig.Host.Spawned.Count);
        rig.Tick(Corral.Supervision.Arbiter.AbortGrace);
        Assert.Equal([Signals.ABRT, Signals.KILL], rig.Host.SignalsTo(slow));
        rig.Exit(slow, 128 + Signals.KILL);
        Assert.False(rig.Arbiter.Finished); // a timeout is not a boot failure
    }

    [Fact]
    public void Sync_a_request_longer_than_the_timeout_kills_the_worker_even_with_heartbeats()
    {
        var rig = new ArbiterRig("-w", "1", "-k", "sync", "-t", "5").Booted();
        var pid = rig.Pids[0];
        var busy = 0L;

        rig.Run(TimeSpan.FromSeconds(5), S, () => rig.Heartbeat(pid, inFlight: 1, busyMs: busy += 1000));
        Assert.Empty(rig.Host.Sent);
        rig.Run(TimeSpan.FromSeconds(1), S, () => rig.Heartbeat(pid, inFlight: 1, busyMs: busy += 1000));

        Assert.True(rig.Log.Has("critical", $"WORKER TIMEOUT (pid:{pid})"));
        Assert.Equal([Signals.ABRT], rig.Host.SignalsTo(pid));
        Assert.Equal(2, rig.Host.Spawned.Count);
    }

    [Fact]
    public void Sync_short_requests_one_after_another_do_not_time_out()
    {
        var rig = new ArbiterRig("-w", "1", "-k", "sync", "-t", "5").Booted();
        var pid = rig.Pids[0];
        var i = 0;
        rig.Run(TimeSpan.FromSeconds(60), S, () => rig.Heartbeat(pid, inFlight: 1, busyMs: 1000 * (i++ % 3)));
        Assert.Empty(rig.Host.Sent);
    }

    [Theory]
    [InlineData("async")]
    [InlineData("gthread")]
    public void A_long_request_in_a_worker_that_keeps_heartbeating_is_not_killed(string workerClass)
    {
        var rig = new ArbiterRig("-w", "1", "-k", workerClass, "-t", "5").Booted();
        var pid = rig.Pids[0];
        var busy = 0L;
        rig.Run(TimeSpan.FromSeconds(60), S, () => rig.Heartbeat(pid, inFlight: 1, busyMs: busy += 1000));
        Assert.Empty(rig.Host.Sent);
        Assert.Single(rig.Host.Spawned);
        Assert.False(rig.Log.Has("critical", "WORKER TIMEOUT"));
    }

    [Fact]
    public void Timeout_zero_disables_timeouts()
    {
        var rig = new ArbiterRig("-w", "1", "-k", "sync", "-t", "0");
        rig.Arbiter.Start();
        rig.Run(TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(10));
        Assert.Empty(rig.Host.Sent);
    }

    // ---- TTIN / TTOU -------------------------------------------------------------------------

    [Fact]
    public void Ttin_adds_a_worker()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        rig.Signal(Signals.TTIN);
        Assert.Equal(3, rig.Arbiter.DesiredWorkers);
        Assert.Equal(3, rig.Host.Spawned.Count);
        Assert.True(rig.Log.Has("info", "Handling signal: ttin"));
    }

    [Fact]
    public void Ttou_removes_the_oldest_worker_and_never_goes_below_one()
    {
        var rig = new ArbiterRig("-w", "3").Booted();
        var oldest = rig.Host.Spawned[0];

        rig.Signal(Signals.TTOU);

        Assert.Equal(2, rig.Arbiter.DesiredWorkers);
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(oldest));
        Assert.Single(rig.Host.Sent);
        rig.Exit(oldest, 0);
        Assert.Equal(3, rig.Host.Spawned.Count); // not replaced
        Assert.False(rig.Log.Has("error", "exited with code"));

        rig.Signal(Signals.TTOU);
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(rig.Host.Spawned[1]));
        rig.ExitSignalled();
        rig.Signal(Signals.TTOU);
        rig.Signal(Signals.TTOU);
        Assert.Equal(1, rig.Arbiter.DesiredWorkers);
        Assert.Equal([rig.Host.Spawned[2]], rig.ServingPids);
        Assert.Empty(rig.Host.SignalsTo(rig.Host.Spawned[2]));
    }

    // ---- HUP ---------------------------------------------------------------------------------

    [Fact]
    public void Hup_starts_a_new_generation_and_stops_the_old_one_only_when_all_new_are_ready()
    {
        var rig = new ArbiterRig("-w", "3").Booted();
        var old = rig.Pids;
        rig.NextConfig = Settings.Ok("-w", "3", "--timeout", "12", "App.dll");

        rig.Signal(Signals.HUP);

        Assert.True(rig.Log.Has("info", "Hang up: Master"));
        Assert.Same(rig.NextConfig, rig.Arbiter.Config);
        var fresh = rig.Booting;
        Assert.Equal(3, fresh.Length);
        Assert.Empty(rig.Host.Sent);

        foreach (var pid in fresh.Take(2))
        {
            rig.Ready(pid);
            rig.Tick(S);
            Assert.Empty(rig.Host.Sent);
            Assert.True(rig.ReadyCount >= 3);
        }
        rig.Ready(fresh[2]);

        foreach (var pid in old)
        {
            Assert.Equal([Signals.TERM], rig.Host.SignalsTo(pid));
        }
        Assert.All(fresh, pid => Assert.Empty(rig.Host.SignalsTo(pid)));
        Assert.Equal(3, rig.ReadyCount);
        rig.ExitSignalled();
        Assert.Equal(fresh, rig.Pids);
        Assert.Equal(6, rig.Host.Spawned.Count);
        Assert.False(rig.Log.Has("error", "exited"));
    }

    [Fact]
    public void A_second_hup_drains_the_first_hups_still_booting_workers_and_keeps_the_old_ones()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var old = rig.Pids;
        rig.NextConfig = Settings.Ok("-w", "2", "App.dll");
        rig.Signal(Signals.HUP);
        var first = rig.Booting;
        rig.Ready(first[0]); // one of them is up (and may hold connections), the other still boots

        rig.NextConfig = Settings.Ok("-w", "2", "App.dll");
        rig.Signal(Signals.HUP);
        var second = rig.Booting.Except(first).ToArray();

        Assert.Equal(2, second.Length);
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(first[1])); // drained, never cut off
        Assert.All(old, pid => Assert.Empty(rig.Host.SignalsTo(pid)));
        foreach (var pid in second)
        {
            rig.Ready(pid);
        }
        Assert.All(old.Append(first[0]), pid => Assert.Equal([Signals.TERM], rig.Host.SignalsTo(pid)));
        rig.ExitSignalled();
        Assert.Equal(second, rig.Pids);
    }

    [Fact]
    public void Hup_with_more_workers_in_the_new_config_grows()
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        rig.NextConfig = Settings.Ok("-w", "3", "App.dll");
        rig.Signal(Signals.HUP);
        Assert.Equal(3, rig.Arbiter.DesiredWorkers);
        Assert.Equal(3, rig.Booting.Length);
    }

    [Fact]
    public void Hup_whose_new_workers_fail_to_boot_keeps_the_old_ones()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var old = rig.Pids;
        rig.NextConfig = Settings.Ok("-w", "2", "App.dll");
        rig.Signal(Signals.HUP);
        var fresh = rig.Booting;

        rig.Error(fresh[0], "appsettings.json: invalid JSON");
        rig.Exit(fresh[0], 1);

        Assert.False(rig.Arbiter.Finished);
        Assert.True(rig.Log.Has("error", $"Worker failed to boot (pid:{fresh[0]}): appsettings.json: invalid JSON"));
        Assert.True(rig.Log.Has("error", "Reload failed: keeping the old workers"));
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(fresh[1])); // it may hold connections: drain
        Assert.All(old, pid => Assert.Empty(rig.Host.SignalsTo(pid)));
        rig.ExitSignalled();

        Assert.Equal(old, rig.ServingPids);
        Assert.Equal(2, rig.ReadyCount);
        rig.Run(TimeSpan.FromSeconds(60), S, rig.HeartbeatAll);
        Assert.Equal(4, rig.Host.Spawned.Count); // no retry of the failed reload
        Assert.All(old, pid => Assert.Empty(rig.Host.SignalsTo(pid)));

        // A later HUP tries again.
        rig.Signal(Signals.HUP);
        Assert.Equal(2, rig.Booting.Length);
        rig.ReadyAll();
        Assert.All(old, pid => Assert.Equal([Signals.TERM], rig.Host.SignalsTo(pid)));
    }

    [Fact]
    public void Hup_whose_new_workers_cannot_even_start_keeps_the_old_ones_and_does_not_retry()
    {
        // `current` swapped to a release with startup hooks off: ProcessHost refuses to spawn it.
        var rig = new ArbiterRig("-w", "2").Booted();
        var old = rig.Pids;
        rig.NextConfig = Settings.Ok("-w", "3", "App.dll");
        rig.Host.FailSpawnWith = "APP current/App.dll: App.runtimeconfig.json switches startup hooks off";
        rig.Signal(Signals.HUP);

        Assert.False(rig.Arbiter.Finished);
        Assert.True(rig.Log.Has("error", "Can't start a worker: APP current/App.dll: App.runtimeconfig.json switches startup hooks off"));
        Assert.True(rig.Log.Has("error", "Reload failed: keeping the old workers"));
        Assert.Equal(2, rig.Arbiter.DesiredWorkers); // the old configuration again
        rig.Run(TimeSpan.FromSeconds(60), S, rig.HeartbeatAll);
        Assert.Equal(old, rig.ServingPids);
        Assert.Equal(2, rig.Host.Spawned.Count); // no retry, no back-off loop
        Assert.All(old, pid => Assert.Empty(rig.Host.SignalsTo(pid)));

        // Fixed and HUP: the reload goes through.
        rig.Host.FailSpawnWith = null;
        rig.Signal(Signals.HUP);
        Assert.Equal(3, rig.Booting.Length);
        rig.ReadyAll();
        Assert.All(old, pid => Assert.Equal([Signals.TERM], rig.Host.SignalsTo(pid)));
    }

    [Fact]
    public void Hup_with_an_invalid_config_changes_nothing()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var before = rig.Arbiter.Config;
        rig.NextConfig = null;

        rig.Signal(Signals.HUP);

        Assert.Same(before, rig.Arbiter.Config);
        Assert.Equal(2, rig.Host.Spawned.Count);
        Assert.Empty(rig.Host.Sent);
        Assert.True(rig.Log.Has("error", "Reload aborted"));
        rig.Run(TimeSpan.FromSeconds(5), S, rig.HeartbeatAll);
        Assert.Equal(2, rig.Host.Spawned.Count);
    }

    // ---- max-requests ------------------------------------------------------------------------

    [Fact]
    public void Recycle_starts_a_successor_and_stops_the_worker_only_once_the_successor_is_ready()
    {
        var rig = new ArbiterRig("-w", "2", "--max-requests", "100").Booted();
        var (retiring, other) = (rig.Pids[0], rig.Pids[1]);

        rig.Recycle(retiring);

        Assert.True(rig.Log.Has("info", $"Worker (pid:{retiring}) reached --max-requests"));
        var successor = Assert.Single(rig.Booting);
        Assert.Empty(rig.Host.Sent);
        rig.Recycle(retiring); // said twice: still one successor
        rig.Run(TimeSpan.FromSeconds(3), S, rig.HeartbeatAll);
        Assert.Equal(3, rig.Host.Spawned.Count);
        Assert.Empty(rig.Host.Sent);

        rig.Ready(successor);

        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(retiring));
        Assert.Empty(rig.Host.SignalsTo(other));
        rig.Exit(retiring, 0);
        Assert.Equal(3, rig.Host.Spawned.Count);
        Assert.Equal([other, successor], rig.Pids);
        Assert.False(rig.Log.Has("error", "exited"));
    }

    // ---- stopping ----------------------------------------------------------------------------

    [Fact]
    public void Term_stops_every_worker_gracefully_and_finishes_with_0_once_all_exited()
    {
        var rig = new ArbiterRig("-w", "3").Booted();
        var pids = rig.Pids;

        rig.Signal(Signals.TERM);

        Assert.True(rig.Arbiter.Stopping);
        Assert.All(pids, pid => Assert.Equal([Signals.TERM], rig.Host.SignalsTo(pid)));
        rig.Exit(pids[0], 0);
        rig.Exit(pids[1], 0);
        Assert.False(rig.Arbiter.Finished);
        Assert.Equal(3, rig.Host.Spawned.Count); // nothing respawned while stopping
        rig.Exit(pids[2], 0);
        Assert.True(rig.Arbiter.Finished);
        Assert.Equal(0, rig.Arbiter.ExitCode);
        Assert.Null(rig.Arbiter.HaltReason);
        Assert.False(rig.Log.Has("error", "exited"));
    }

    [Fact]
    public void Term_while_booting_stops_without_a_boot_failure()
    {
        var rig = new ArbiterRig("-w", "2");
        rig.Arbiter.Start();
        rig.Signal(Signals.TERM);
        rig.ExitSignalled();
        Assert.True(rig.Arbiter.Finished);
        Assert.Equal(0, rig.Arbiter.ExitCode);
    }

    [Fact]
    public void A_worker_that_does_not_exit_within_the_graceful_timeout_is_killed()
    {
        var rig = new ArbiterRig("-w", "2", "--graceful-timeout", "10").Booted();
        var (quick, stuck) = (rig.Pids[0], rig.Pids[1]);
        rig.Signal(Signals.TERM);
        rig.Exit(quick, 0);

        rig.Run(TimeSpan.FromSeconds(9.9));
        Assert.Equal([Signals.TERM], rig.Host.SignalsTo(stuck));
        rig.Run(TimeSpan.FromSeconds(0.1));
        Assert.Equal([Signals.TERM, Signals.KILL], rig.Host.SignalsTo(stuck));

        rig.Run(TimeSpan.FromSeconds(30));
        Assert.Equal([Signals.TERM, Signals.KILL], rig.Host.SignalsTo(stuck)); // killed once
        rig.Exit(stuck, 128 + Signals.KILL);
        Assert.True(rig.Arbiter.Finished);
        Assert.Equal(0, rig.Arbiter.ExitCode);
    }

    [Fact]
    public void A_worker_stopped_by_ttou_that_hangs_is_killed_after_the_graceful_timeout()
    {
        var rig = new ArbiterRig("-w", "2", "--graceful-timeout", "5").Booted();
        var oldest = rig.Pids[0];
        rig.Signal(Signals.TTOU);
        rig.Run(TimeSpan.FromSeconds(5.1), S / 10, rig.HeartbeatAll);
        Assert.Equal([Signals.TERM, Signals.KILL], rig.Host.SignalsTo(oldest));
        Assert.False(rig.Arbiter.Stopping);
    }

    [Theory]
    [InlineData(Signals.INT)]
    [InlineData(Signals.QUIT)]
    public void Int_and_quit_stop_quickly_with_quit_to_the_workers(int signal)
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var pids = rig.Pids;
        rig.Signal(signal);
        Assert.All(pids, pid => Assert.Equal([Signals.QUIT], rig.Host.SignalsTo(pid)));
        rig.ExitSignalled();
        Assert.True(rig.Arbiter.Finished);
        Assert.Equal(0, rig.Arbiter.ExitCode);
    }

    [Fact]
    public void Int_during_a_graceful_stop_hurries_the_workers()
    {
        var rig = new ArbiterRig("-w", "1").Booted();
        var pid = rig.Pids[0];
        rig.Signal(Signals.TERM);
        rig.Signal(Signals.INT);
        Assert.Equal([Signals.TERM, Signals.QUIT], rig.Host.SignalsTo(pid));
    }

    [Fact]
    public void Term_with_no_workers_finishes_at_once()
    {
        var rig = new ArbiterRig("-w", "1");
        rig.Signal(Signals.TERM);
        Assert.True(rig.Arbiter.Finished);
        Assert.Equal(0, rig.Arbiter.ExitCode);
    }

    // ---- USR1 and the rest ---------------------------------------------------------------------

    [Fact]
    public void Usr1_reopens_the_log_and_passes_usr1_to_every_worker()
    {
        var rig = new ArbiterRig("-w", "3").Booted();
        rig.Signal(Signals.USR1);
        Assert.Equal(1, rig.Log.Reopened);
        Assert.All(rig.Pids, pid => Assert.Equal([Signals.USR1], rig.Host.SignalsTo(pid)));
        Assert.Equal(3, rig.Host.Spawned.Count);
        Assert.False(rig.Arbiter.Stopping);
    }

    [Fact]
    public void Winch_drains_every_worker_and_keeps_the_master_until_hup()
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        var old = rig.Pids;
        rig.Signal(Signals.WINCH);
        Assert.All(old, pid => Assert.Equal([Signals.TERM], rig.Host.SignalsTo(pid)));
        rig.ExitSignalled();
        rig.Run(TimeSpan.FromSeconds(10));
        Assert.Empty(rig.Pids);
        Assert.Equal(2, rig.Host.Spawned.Count);
        Assert.False(rig.Arbiter.Stopping);

        rig.NextConfig = rig.Config;
        rig.Signal(Signals.HUP);
        Assert.Equal(2, rig.Booting.Length);
    }

    // USR2 is the master loop's (it starts a new master); the arbiter itself has nothing to do.
    [Theory]
    [InlineData(Signals.USR2)]
    public void Signals_not_supported_yet_are_logged_and_change_nothing(int signal)
    {
        var rig = new ArbiterRig("-w", "2").Booted();
        rig.Signal(signal);
        Assert.True(rig.Log.Has("warning", "not supported yet"));
        Assert.Empty(rig.Host.Sent);
        Assert.Equal(2, rig.Host.Spawned.Count);
    }

    [Fact]
    public void Signal_names_are_gunicorns()
    {
        Assert.Equal("hup", Signals.Name(Signals.HUP));
        Assert.Equal("ttin", Signals.Name(21));
        Assert.Equal("ttou", Signals.Name(22));
        Assert.Equal("usr1", Signals.Name(10));
        Assert.Equal("signal 99", Signals.Name(99));
    }
}
