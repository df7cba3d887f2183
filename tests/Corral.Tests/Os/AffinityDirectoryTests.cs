using Corral.Os;

namespace Corral.Tests;

/// <summary>The master's private folder for its workers' forwarding sockets, on a real file system.</summary>
public sealed class AffinityDirectoryTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("corral-affinity-test").FullName;

    [Fact]
    public void OnlyTheMastersUserMayEnterItAndItGoesAtTheEnd()
    {
        var env = new Dictionary<string, string?> { ["XDG_RUNTIME_DIR"] = _root };
        var dir = AffinityDirectory.Create(env, out var error);
        Assert.NotNull(dir);
        Assert.Null(error);
        Assert.StartsWith(_root, dir.Path, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir.Path));
        Assert.Equal(Path.Combine(dir.Path, "4242.sock"), AffinityDirectory.SocketPath(dir.Path, 4242));
        File.WriteAllText(AffinityDirectory.SocketPath(dir.Path, 4242), "");
        dir.Dispose();
        Assert.False(Directory.Exists(dir.Path));
    }

    [Fact]
    public void AKilledMastersFolderIsSweptAndALiveOnesIsNot()
    {
        var dead = Directory.CreateDirectory(Path.Combine(_root, "corral-2147483646-0123abcd")).FullName; // no such pid
        File.WriteAllText(Path.Combine(dead, "12.sock"), "");
        File.WriteAllText(Path.Combine(dead, "App.jitprofile"), ""); // --jit-profile
        File.WriteAllText(Path.Combine(dead, "App.jitprofile.12"), "");
        var live = Directory.CreateDirectory(Path.Combine(_root, $"corral-{Environment.ProcessId}-0123abcd")).FullName;
        var notOurs = Directory.CreateDirectory(Path.Combine(_root, "corral-2147483646-notours1")).FullName;
        File.WriteAllText(Path.Combine(notOurs, "data.txt"), "");
        using var dir = AffinityDirectory.Create(new Dictionary<string, string?> { ["XDG_RUNTIME_DIR"] = _root }, out _);
        Assert.False(Directory.Exists(dead));
        Assert.True(Directory.Exists(live));
        Assert.True(Directory.Exists(notOurs));
    }

    [Fact]
    public void ARootTooLongForASocketPathIsPassedOver()
    {
        var deep = Directory.CreateDirectory(Path.Combine(_root, new string('d', 100))).FullName;
        using var dir = AffinityDirectory.Create(new Dictionary<string, string?> { ["XDG_RUNTIME_DIR"] = deep, ["TMPDIR"] = _root }, out _);
        Assert.NotNull(dir);
        Assert.StartsWith(_root + "/corral-", dir.Path, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
