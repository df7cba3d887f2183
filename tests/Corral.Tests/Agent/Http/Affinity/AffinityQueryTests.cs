using Corral.Agent.Http.Affinity;

namespace Corral.Tests;

/// <summary>The worker's mark on a SignalR connection token, and finding it in a request's raw query.</summary>
public sealed class AffinityQueryTests
{
    [Fact]
    public void AMarkIsThePidAndATilde()
    {
        Assert.Equal("4242~Vb9Y4Tqp-wcKtw9GwsKu_A", AffinityMarker.Format(4242, "Vb9Y4Tqp-wcKtw9GwsKu_A"));
        Assert.True(AffinityMarker.TryParse("4242~Vb9Y", out var pid, out var length));
        Assert.Equal((4242, 5), (pid, length));
        // Escaped by a client that encodes '~' (Java's URLEncoder does).
        Assert.True(AffinityMarker.TryParse("4242%7eVb9Y", out pid, out length));
        Assert.Equal((4242, 7), (pid, length));
    }

    [Theory]
    [InlineData("Vb9Y4Tqp-wcKtw9GwsKu_A")] // a plain SignalR token: base64url, never '~'
    [InlineData("~Vb9Y")]
    [InlineData("0~Vb9Y")]
    [InlineData("-1~Vb9Y")]
    [InlineData("12345678901~Vb9Y")] // more digits than a pid has
    [InlineData("4242Vb9Y")]
    [InlineData("4242")]
    [InlineData("")]
    public void NoMark(string value) => Assert.False(AffinityMarker.TryParse(value, out _, out _));

    [Theory]
    [InlineData("?id=4242~T1", 4242, "?id=T1")]
    [InlineData("?id=4242~T1&access_token=abc", 4242, "?id=T1&access_token=abc")]
    [InlineData("?access_token=a~b&id=77~T1", 77, "?access_token=a~b&id=T1")]
    [InlineData("?userid=1&id=77%7ET1", 77, "?userid=1&id=T1")]
    [InlineData("id=77~T1", 77, "id=T1")]
    public void TheFirstIdParameterCarriesTheMarkWhichIsTakenOut(string query, int pid, string stripped)
    {
        Assert.True(AffinityQuery.MayCarry(query));
        Assert.True(AffinityQuery.TryFind(query, out var found, out var rest));
        Assert.Equal((pid, stripped), (found, rest));
    }

    [Theory]
    [InlineData("?id=T1~x")] // the mark must lead the value
    [InlineData("?userid=77~T1")] // not the "id" parameter
    [InlineData("?id=T1&id=77~T2")] // SignalR reads the first "id"
    [InlineData("?xid=77~T1")]
    public void NotMarked(string query) => Assert.False(AffinityQuery.TryFind(query, out _, out _));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("?a=1")]
    [InlineData("?id=Vb9Y4Tqp-wcKtw9GwsKu_A")] // an unmarked token (a worker without affinity)
    [InlineData("?page=2&sort=name")]
    [InlineData("?path=~/x")]
    public void APlainRequestIsNotParsed(string? query) => Assert.False(AffinityQuery.MayCarry(query));
}
