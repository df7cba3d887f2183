using Corral.Lifecycle;

namespace Corral.Tests;

public sealed class SnapshotsTests
{
    [Fact]
    public void EachMasterHasItsFolderAndEachBuildItsOwnInIt()
    {
        Assert.Equal("/tmp/corral-builds-4242", Snapshots.RootFor("/tmp", 4242));
        Assert.Equal("publish-3", Snapshots.BuildName(publish: true, 3));
        Assert.Equal("debug-1", Snapshots.BuildName(publish: false, 1));
    }

    [Theory]
    [InlineData("corral-builds-4242", 4242)]
    [InlineData("corral-builds-", null)]
    [InlineData("corral-builds-12ab", null)]
    [InlineData("corral-builds--5", null)]
    [InlineData("corral-builds-99999999999", null)]
    [InlineData("corral-reload-4242", null)]
    [InlineData("corral-4242", null)]
    [InlineData("corral-template-mvc-123456", null)]
    public void OnlyAMastersFolderNameYieldsAPid(string name, int? pid) => Assert.Equal(pid, Snapshots.MasterPid(name));

    [Fact]
    public void ABuildStaysWhileAWorkerRunsItTheNextSpawnWillOrABuildWritesIt()
    {
        string[] builds = ["/t/corral-builds-7/publish-1", "/t/corral-builds-7/publish-2", "/t/corral-builds-7/publish-3", "/t/corral-builds-7/publish-4"];
        var unused = Snapshots.Unused(builds,
            inUse: ["/t/corral-builds-7/publish-2/App.dll", "/t/corral-builds-7/publish-3/App.dll"],
            building: "/t/corral-builds-7/publish-4");
        Assert.Equal(["/t/corral-builds-7/publish-1"], unused);
    }

    [Fact]
    public void ABuildWhoseNameIsAPrefixOfAnotherIsNotKeptByIt()
    {
        // publish-1 is not "in use" because publish-10 is.
        var unused = Snapshots.Unused(["/t/b/publish-1", "/t/b/publish-10"], ["/t/b/publish-10/App.dll"], building: null);
        Assert.Equal(["/t/b/publish-1"], unused);
    }

    [Fact]
    public void TheFoldersOfMastersThatAreGoneAreStaleNotThoseOfLiveOnesNorOthers()
    {
        string[] children = ["/tmp/corral-builds-10", "/tmp/corral-builds-11", "/tmp/corral-builds-12", "/tmp/corral-reload-13", "/tmp/something-else"];
        var stale = Snapshots.Stale(children, selfPid: 12, isAlive: pid => pid == 11);
        Assert.Equal(["/tmp/corral-builds-10"], stale);
    }
}
