using Corral.Lifecycle;
using Corral.Supervision;

namespace Corral.Tests;

/// <summary>--boot-nice, --jit-profile and --ready-to-run: the pure parts (the OS side is in CheaperBootTests).</summary>
public class BootPriorityTests
{
    [Theory]
    [InlineData(true, 0UL, 0, true)] // root, or CAP_SYS_NICE
    [InlineData(false, BootPriority.Unlimited, 0, true)]
    [InlineData(false, 20UL, 0, true)] // RLIMIT_NICE 20: down to nice 0
    [InlineData(false, 19UL, 0, false)] // down to nice 1 only
    [InlineData(false, 0UL, 0, false)] // the usual unprivileged limit
    [InlineData(false, 15UL, 5, true)] // a master at nice 5 may come back to 5
    public void A_priority_can_be_raised_back_with_cap_sys_nice_or_a_high_enough_rlimit_nice(bool cap, ulong limit, int masterNice, bool expected) =>
        Assert.Equal(expected, BootPriority.MayRaiseBack(cap, limit, masterNice));

    [Fact]
    public void A_worker_boots_at_the_masters_nice_plus_the_setting()
    {
        Assert.Equal(10, BootPriority.BootNice(10, 0, mayRaiseBack: true, out var why));
        Assert.Null(why);
        Assert.Equal(15, BootPriority.BootNice(10, 5, mayRaiseBack: true, out _));
        Assert.Equal(19, BootPriority.BootNice(10, 12, mayRaiseBack: true, out _)); // capped at the lowest priority
    }

    [Fact]
    public void Zero_or_nothing_lower_boots_at_the_masters_priority_silently()
    {
        Assert.Null(BootPriority.BootNice(0, 0, mayRaiseBack: true, out var why));
        Assert.Null(why);
        Assert.Null(BootPriority.BootNice(10, 19, mayRaiseBack: true, out why));
        Assert.Null(why);
    }

    [Fact]
    public void Without_the_right_to_raise_it_back_a_worker_is_not_lowered_and_the_reason_is_given()
    {
        Assert.Null(BootPriority.BootNice(10, 0, mayRaiseBack: false, out var why));
        Assert.Equal("Workers boot at the master's priority (nice 0), not --boot-nice 10: corral could not raise a ready worker's priority back (it needs root, CAP_SYS_NICE or RLIMIT_NICE >= 20)", why);
    }

    [Fact]
    public void The_arbiter_tells_the_host_once_when_a_worker_is_ready()
    {
        var rig = new ArbiterRig("-w", "2");
        rig.Arbiter.Start();
        var (a, b) = (rig.Pids[0], rig.Pids[1]);
        Assert.Empty(rig.Host.Readied);
        rig.Ready(b);
        rig.Ready(b); // a repeated line changes nothing
        Assert.Equal([b], rig.Host.Readied);
        rig.Ready(a);
        Assert.Equal([b, a], rig.Host.Readied);
    }

    [Fact]
    public void A_ready_to_run_publish_names_this_runtimes_identifier_and_stays_framework_dependent()
    {
        var args = ProjectBuilder.PublishArguments(readyToRun: true);
        Assert.Equal(["-r", System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier, "--self-contained", "false", "-p:PublishReadyToRun=true"], args);
        Assert.StartsWith("linux-", args[1], StringComparison.Ordinal);
        Assert.Empty(ProjectBuilder.PublishArguments(readyToRun: false));
    }

    [Fact]
    public void The_settings_defaults_and_their_other_values()
    {
        var defaults = Settings.Ok("App.dll");
        Assert.False(defaults.JitProfile);
        Assert.True(defaults.ReadyToRun);
        Assert.Equal(0, defaults.BootNice);
        var other = Settings.Ok("--jit-profile", "on", "--ready-to-run", "off", "--boot-nice", "10", "App.dll");
        Assert.True(other.JitProfile);
        Assert.False(other.ReadyToRun);
        Assert.Equal(10, other.BootNice);
    }
}
