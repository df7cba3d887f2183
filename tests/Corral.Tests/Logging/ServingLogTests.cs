using Corral.Agent.Contract;
using Corral.Logging;

namespace Corral.Tests;

/// <summary>The workers' "serving" reports, logged by the master once per listener, and again only when they change.</summary>
public sealed class ServingLogTests
{
    private static readonly string[] Listeners = ["http://127.0.0.1:8000", "unix:/run/app.sock"];

    private static string Report(string protocols = "h2", string[]? replaced = null, string? warning = null) => new ServingReport
    {
        Protocols = protocols,
        Asked = protocols,
        Source = "the app's Kestrel:EndpointDefaults:Protocols",
        Warning = warning,
        Replaced = replaced ?? [],
    }.ToJson();

    [Fact]
    public void EveryWorkersReportIsLoggedOncePerListener()
    {
        var log = new CapturingLog();
        var serving = new ServingLog(Listeners, log);
        var report = Report(replaced: ["http://0.0.0.0:5555"]);
        serving.OnReport(report); // worker 1
        serving.OnReport(report); // worker 2
        serving.OnReport(report); // after a HUP, the same app
        Assert.Equal(
        [
            ("info", "Protocols at http://127.0.0.1:8000: h2 (HTTP/2 without TLS: prior knowledge only, as gRPC clients and nginx's grpc_pass speak it; HTTP/1.x requests get 400), from the app's Kestrel:EndpointDefaults:Protocols"),
            ("info", "Protocols at unix:/run/app.sock: h2 (HTTP/2 without TLS: prior knowledge only, as gRPC clients and nginx's grpc_pass speak it; HTTP/1.x requests get 400), from the app's Kestrel:EndpointDefaults:Protocols"),
            ("info", "Overriding the app's own URLs and Kestrel endpoints (http://0.0.0.0:5555): serving on corral's listeners (http://127.0.0.1:8000, unix:/run/app.sock)"),
        ], log.Lines);
    }

    [Fact]
    public void AChangeIsLoggedAgain()
    {
        var log = new CapturingLog();
        var serving = new ServingLog(Listeners, log);
        serving.OnReport(Report("h2"));
        serving.OnReport(Report("h1", ["http://*:8080"]));
        serving.OnReport(Report("h1", ["http://*:8080"]));
        Assert.Equal(2, log.Lines.Count(l => l.Text.StartsWith("Protocols at http://127.0.0.1:8000: ", StringComparison.Ordinal)));
        Assert.Equal(1, log.Lines.Count(l => l.Text.StartsWith("Protocols at http://127.0.0.1:8000: h1 ", StringComparison.Ordinal)));
        Assert.Single(log.Lines, l => l.Text.StartsWith("Overriding", StringComparison.Ordinal));
    }

    [Fact]
    public void AWarningIsAWarningOnce()
    {
        var log = new CapturingLog();
        var serving = new ServingLog(Listeners, log);
        serving.OnReport(Report(warning: "endpoints disagree"));
        serving.OnReport(Report(warning: "endpoints disagree"));
        Assert.Single(log.Lines, l => l == ("warning", "endpoints disagree"));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{\"protocols\":\"h9\"}")]
    [InlineData("[]")]
    public void GarbageIsDropped(string json)
    {
        var log = new CapturingLog();
        new ServingLog(Listeners, log).OnReport(json);
        Assert.Empty(log.Lines);
    }
}
