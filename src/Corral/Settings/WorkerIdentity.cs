using System.Globalization;
using Corral.Agent.Contract;
using Corral.Os;

namespace Corral.Settings;

/// <summary>
/// -u/--user and -g/--group resolved, once, in the master: the ids every worker switches to (see
/// Corral.Agent.Os.Credentials), and the user's entry for its environment (HOME, USER, LOGNAME).
/// </summary>
/// <param name="Entry">The user's entry in the user database; null for a uid that has none.</param>
public sealed record WorkerIdentity(uint Uid, uint Gid, uint[] Groups, string Name, Accounts.User? Entry)
{
    /// <summary>What a worker is told.</summary>
    public WorkerUser ToAgent() => new() { Uid = Uid, Gid = Gid, Groups = Groups, Name = Name };

    /// <summary>
    /// HOME, USER and LOGNAME of the user, as systemd's User= and runuser set them (Gunicorn leaves
    /// root's): an app that keeps files under HOME (ASP.NET Core's data protection keys) looks in the
    /// user's home, not in /root where it may not read. -e sets them otherwise.
    /// </summary>
    public void SetEnvironment(IDictionary<string, string?> environment)
    {
        if (Entry is { } entry && entry.Uid == Uid)
        {
            environment["HOME"] = entry.Home;
            environment["USER"] = entry.Name;
            environment["LOGNAME"] = entry.Name;
        }
    }

    /// <summary>The largest id: (uid_t)-1 means "no change" to setuid and chown.</summary>
    private const uint MaxId = uint.MaxValue - 1;

    /// <summary>A numeric id (Gunicorn's isdigit()), or null for a name.</summary>
    public static uint? ParseId(string text) =>
        text.Length > 0 && text.All(char.IsAsciiDigit) && uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id <= MaxId ? id : null;

    /// <summary>The setting's own check: a number, or a name the user database knows.</summary>
    public static string? CheckUser(string text) => text.All(char.IsAsciiDigit)
        ? ParseId(text) is null ? "not a valid uid" : null
        : Accounts.UserNamed(text) is null ? "no such user" : null;

    /// <inheritdoc cref="CheckUser"/>
    public static string? CheckGroup(string text) => text.All(char.IsAsciiDigit)
        ? ParseId(text) is null ? "not a valid gid" : null
        : Accounts.GroupNamed(text) is null ? "no such group" : null;

    /// <summary>
    /// The identity workers take, or null when they stay who the master is (neither setting, or both
    /// already the master's). The group is -g, else the user's own primary group (Gunicorn keeps the
    /// master's: root's); the supplementary groups are the user's (initgroups(3), Gunicorn's
    /// --initgroups, always), never the master's. Only root may switch to another user or group.
    /// </summary>
    /// <param name="from">Where a setting's value came from, as an error says it ("the command line").</param>
    /// <exception cref="SettingException">No such user or group, a uid with no primary group, or not root.</exception>
    public static WorkerIdentity? Resolve(string? user, string? group, uint euid, uint egid, Func<Setting, string> from)
    {
        if (user is null && group is null)
        {
            return null;
        }
        Accounts.User? entry;
        uint uid;
        if (user is null)
        {
            uid = euid;
            entry = Accounts.UserWithId(euid);
        }
        else if (ParseId(user) is { } id)
        {
            uid = id;
            entry = Accounts.UserWithId(id);
        }
        else
        {
            entry = Accounts.UserNamed(user) ?? throw Error(SettingsTable.User, user, "no such user", from);
            uid = entry.Uid;
        }
        uint gid;
        if (group is null)
        {
            gid = entry?.Gid ?? throw Error(SettingsTable.User, user!, $"uid {uid} has no entry in the user database, so no group of its own: give -g/--group too", from);
        }
        else
        {
            gid = ParseId(group) ?? Accounts.GroupNamed(group) ?? throw Error(SettingsTable.Group, group, "no such group", from);
        }
        if (euid != 0)
        {
            if (uid != euid)
            {
                throw Error(SettingsTable.User, user!, $"only root can switch the workers to another user, and corral runs as uid {euid}: start corral as root (it stays root; the workers switch), or leave --user out", from);
            }
            if (gid != egid)
            {
                throw Error(group is null ? SettingsTable.User : SettingsTable.Group, group ?? user!, $"only root can switch the workers to another group (gid {gid}), and corral runs as uid {euid}, gid {egid}: start corral as root, or leave --group out", from);
            }
        }
        if (uid == euid && gid == egid && euid != 0)
        {
            return null; // already so: nothing to switch (Gunicorn's set_owner_process does nothing either)
        }
        var groups = user is not null && entry is not null ? Accounts.GroupsOf(entry.Name, gid) : [gid];
        return new WorkerIdentity(uid, gid, groups, entry?.Name ?? uid.ToString(CultureInfo.InvariantCulture), entry);
    }

    private static SettingException Error(Setting setting, string value, string reason, Func<Setting, string> from) =>
        new(setting, value, $"{new SettingException(setting, value, reason).Reason} (from {from(setting)})");
}
