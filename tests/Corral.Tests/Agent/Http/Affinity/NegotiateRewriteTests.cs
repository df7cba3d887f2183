using System.Text;
using Corral.Agent.Http.Affinity;

namespace Corral.Tests;

/// <summary>Marking a SignalR negotiate response with the worker that issued it, and leaving every other answer alone.</summary>
public sealed class NegotiateRewriteTests
{
    private static string? Rewrite(string json, int pid = 4242) =>
        NegotiateRewrite.Rewrite(Encoding.UTF8.GetBytes(json), pid) is { } bytes ? Encoding.UTF8.GetString(bytes) : null;

    [Fact]
    public void Version1MarksTheTokenOnlyAndKeepsTheRest()
    {
        const string Negotiate = """{"negotiateVersion":1,"connectionId":"t0l0Iuwus7hlUS0C8xGuWw","connectionToken":"Vb9Y4Tqp-wcKtw9GwsKu_A","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}""";
        Assert.Equal(
            """{"negotiateVersion":1,"connectionId":"t0l0Iuwus7hlUS0C8xGuWw","connectionToken":"4242~Vb9Y4Tqp-wcKtw9GwsKu_A","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}""",
            Rewrite(Negotiate));
    }

    [Fact]
    public void Version0MarksTheConnectionIdItsClientsSendBack()
    {
        Assert.Equal(
            """{"connectionId":"4242~t0l0Iuwus7hlUS0C8xGuWw","availableTransports":[]}""",
            Rewrite("""{"connectionId":"t0l0Iuwus7hlUS0C8xGuWw","availableTransports":[]}"""));
    }

    [Theory]
    [InlineData("""{"error":"Negotiate failed"}""")]
    [InlineData("""{"url":"https://signalr.example/client/?hub=chat","accessToken":"eyJ.x.y"}""")] // Azure SignalR's redirect
    [InlineData("""{"negotiateVersion":1,"availableTransports":[]}""")]
    [InlineData("""{"connectionToken":42}""")]
    [InlineData("""["connectionToken"]""")]
    [InlineData("not json")]
    [InlineData("")]
    public void AnythingElseIsLeftAlone(string body) => Assert.Null(Rewrite(body));
}
