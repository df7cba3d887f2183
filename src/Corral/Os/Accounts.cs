using System.Runtime.InteropServices;

namespace Corral.Os;

/// <summary>
/// The user database as libc sees it (getpwnam_r, getgrnam_r, getgrouplist: /etc/passwd, and LDAP or
/// systemd-userdb where NSS is so set up), and the master's own ids: what -u/--user and -g/--group
/// are resolved against, once, in the master.
/// </summary>
public static partial class Accounts
{
    /// <summary>A user's entry.</summary>
    public sealed record User(string Name, uint Uid, uint Gid, string Home);

    [StructLayout(LayoutKind.Sequential)]
    private struct Passwd
    {
        public nint Name;
        public nint Password;
        public uint Uid;
        public uint Gid;
        public nint Gecos;
        public nint Dir;
        public nint Shell;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Group
    {
        public nint Name;
        public nint Password;
        public uint Gid;
        public nint Members;
    }

    private const int ERANGE = 34;

    [LibraryImport("libc", EntryPoint = "getpwnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int GetPwNam(string name, Passwd* entry, byte* buffer, nuint size, Passwd** result);

    [LibraryImport("libc", EntryPoint = "getpwuid_r")]
    private static unsafe partial int GetPwUid(uint uid, Passwd* entry, byte* buffer, nuint size, Passwd** result);

    [LibraryImport("libc", EntryPoint = "getgrnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int GetGrNam(string name, Group* entry, byte* buffer, nuint size, Group** result);

    [LibraryImport("libc", EntryPoint = "getgrouplist", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int GetGroupList(string user, uint group, uint* groups, int* count);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint EffectiveUid();

    [LibraryImport("libc", EntryPoint = "getegid")]
    public static partial uint EffectiveGid();

    /// <summary>The user named so; null if there is none.</summary>
    public static unsafe User? UserNamed(string name) => ReadUser((Passwd* e, byte* b, nuint n, Passwd** r) => GetPwNam(name, e, b, n, r));

    /// <summary>The user with this uid; null if the database has no entry for it.</summary>
    public static unsafe User? UserWithId(uint uid) => ReadUser((Passwd* e, byte* b, nuint n, Passwd** r) => GetPwUid(uid, e, b, n, r));

    /// <summary>The gid of the group named so; null if there is none.</summary>
    public static unsafe uint? GroupNamed(string name) => ReadGroup((Group* e, byte* b, nuint n, Group** r) => GetGrNam(name, e, b, n, r));

    /// <summary>The groups <paramref name="user"/> belongs to, <paramref name="gid"/> included (what initgroups(3) sets).</summary>
    public static unsafe uint[] GroupsOf(string user, uint gid)
    {
        var count = 32;
        while (true)
        {
            var groups = new uint[count];
            int n = count;
            fixed (uint* p = groups)
            {
                if (GetGroupList(user, gid, p, &n) >= 0)
                {
                    return groups[..n];
                }
            }
            count = Math.Max(n, count * 2);
        }
    }

    private unsafe delegate int PasswdCall(Passwd* entry, byte* buffer, nuint size, Passwd** result);

    private unsafe delegate int GroupCall(Group* entry, byte* buffer, nuint size, Group** result);

    private static unsafe User? ReadUser(PasswdCall call)
    {
        for (var size = 1024; size <= 1 << 20; size *= 4)
        {
            var buffer = new byte[size];
            Passwd entry;
            Passwd* result = null;
            int rc;
            fixed (byte* b = buffer)
            {
                rc = call(&entry, b, (nuint)size, &result);
                if (rc == 0)
                {
                    return result == null ? null
                        : new User(Marshal.PtrToStringUTF8(result->Name) ?? "", result->Uid, result->Gid, Marshal.PtrToStringUTF8(result->Dir) ?? "/");
                }
            }
            if (rc != ERANGE)
            {
                return null;
            }
        }
        return null;
    }

    private static unsafe uint? ReadGroup(GroupCall call)
    {
        for (var size = 1024; size <= 1 << 20; size *= 4)
        {
            var buffer = new byte[size];
            Group entry;
            Group* result = null;
            int rc;
            fixed (byte* b = buffer)
            {
                rc = call(&entry, b, (nuint)size, &result);
                if (rc == 0)
                {
                    return result == null ? null : result->Gid;
                }
            }
            if (rc != ERANGE)
            {
                return null;
            }
        }
        return null;
    }
}
