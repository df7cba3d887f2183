using System.Globalization;
using Corral.Os;
using Corral.Settings;

namespace Corral.Tests;

/// <summary>
/// -u/--user and -g/--group resolved as the master resolves them, for a master of any uid (the
/// master's ids are parameters here): names and numbers, the group the user gets, who may switch.
/// </summary>
public class WorkerIdentityTests
{
    private static readonly Accounts.User Nobody = Accounts.UserNamed("nobody") ?? throw new InvalidOperationException("these tests need the user database's nobody");

    /// <summary>A uid and gid no entry of the user database has.</summary>
    private static readonly uint Unnamed = Enumerable.Range(54321, 1000).Select(i => (uint)i).First(i => Accounts.UserWithId(i) is null);

    private static WorkerIdentity? Resolve(string? user, string? group, uint euid = 0, uint egid = 0) =>
        WorkerIdentity.Resolve(user, group, euid, egid, _ => "the command line");

    private static string ErrorOf(string? user, string? group, uint euid = 0, uint egid = 0)
    {
        var e = Assert.Throws<SettingException>(() => Resolve(user, group, euid, egid));
        Settings.AssertOneLine(e.Message);
        return e.Message;
    }

    [Fact]
    public void Neither_setting_leaves_the_workers_as_the_master()
    {
        Assert.Null(Resolve(null, null));
        Assert.Null(Resolve(null, null, 1000, 1000));
    }

    [Fact]
    public void A_user_by_name_takes_its_own_group_and_its_groups_from_the_user_database()
    {
        var who = Resolve("nobody", null)!;
        Assert.Equal((Nobody.Uid, Nobody.Gid, "nobody"), (who.Uid, who.Gid, who.Name));
        Assert.Contains(Nobody.Gid, who.Groups);
        Assert.DoesNotContain(0u, who.Groups); // never root's group, as Gunicorn's workers keep without --initgroups
        Assert.Equal(Nobody.Home, who.Entry!.Home);
    }

    [Fact]
    public void Numbers_are_ids_as_given_and_a_group_overrides_the_users_own()
    {
        var byNumber = Resolve(Nobody.Uid.ToString(CultureInfo.InvariantCulture), "0")!;
        Assert.Equal((Nobody.Uid, 0u, "nobody"), (byNumber.Uid, byNumber.Gid, byNumber.Name));

        var unnamed = Resolve(Unnamed.ToString(CultureInfo.InvariantCulture), Unnamed.ToString(CultureInfo.InvariantCulture))!;
        Assert.Equal((Unnamed, Unnamed, Unnamed.ToString(CultureInfo.InvariantCulture)), (unnamed.Uid, unnamed.Gid, unnamed.Name));
        Assert.Equal([Unnamed], unnamed.Groups);
        Assert.Null(unnamed.Entry);
    }

    [Fact]
    public void A_uid_without_an_entry_needs_a_group()
    {
        var error = ErrorOf(Unnamed.ToString(CultureInfo.InvariantCulture), null);
        Assert.StartsWith($"--user (user): '{Unnamed}' is not valid: uid {Unnamed} has no entry in the user database, so no group of its own: give -g/--group too", error);
        Assert.EndsWith("(from the command line)", error);
    }

    [Fact]
    public void A_group_alone_changes_only_the_group()
    {
        var who = Resolve(null, "nogroup")!;
        Assert.Equal(0u, who.Uid);
        Assert.Equal(Accounts.GroupNamed("nogroup"), who.Gid);
        Assert.Equal([who.Gid], who.Groups);
    }

    [Fact]
    public void Only_root_may_switch_to_another_user_or_group()
    {
        var user = ErrorOf("nobody", null, euid: 1000, egid: 1000);
        Assert.StartsWith("--user (user): 'nobody' is not valid: only root can switch the workers to another user, and corral runs as uid 1000", user);
        var group = ErrorOf(null, "0", euid: 1000, egid: 1000);
        Assert.StartsWith("--group (group): '0' is not valid: only root can switch the workers to another group (gid 0), and corral runs as uid 1000, gid 1000", group);
    }

    [Fact]
    public void A_user_who_names_themself_switches_nothing()
    {
        Assert.Null(Resolve("nobody", null, Nobody.Uid, Nobody.Gid));
        Assert.Null(Resolve(Nobody.Uid.ToString(CultureInfo.InvariantCulture), Nobody.Gid.ToString(CultureInfo.InvariantCulture), Nobody.Uid, Nobody.Gid));
    }

    [Fact]
    public void An_unknown_user_or_group_is_one_line_at_load()
    {
        Assert.Equal("--user (user): 'no-such-user-of-corral' is not valid: no such user (expected a user name or a numeric uid) (from the command line)",
            Settings.Error("-u", "no-such-user-of-corral", "App.dll"));
        Assert.Equal("--group (group): 'no-such-group-of-corral' is not valid: no such group (expected a group name or a numeric gid) (from the command line)",
            Settings.Error("-g", "no-such-group-of-corral", "App.dll"));
        Assert.StartsWith("--user (user): '4294967295' is not valid: not a valid uid", Settings.Error("--user", "4294967295", "App.dll"));
    }

    [Fact]
    public void The_workers_get_the_users_home_and_name_unless_env_says_otherwise()
    {
        var env = new Dictionary<string, string?> { ["HOME"] = "/root", ["USER"] = "root", ["LOGNAME"] = "root" };
        Resolve("nobody", null)!.SetEnvironment(env);
        Assert.Equal((Nobody.Home, "nobody", "nobody"), (env["HOME"], env["USER"], env["LOGNAME"]));

        var unchanged = new Dictionary<string, string?> { ["HOME"] = "/root" };
        Resolve(null, "nogroup")!.SetEnvironment(unchanged); // still root: root's home
        Assert.Equal("/root", unchanged["HOME"]);
    }
}
