using Corral.Agent;
using Corral.Control;
using Corral.Metrics;

namespace Corral.Tests;

public sealed class ObservabilityUnitTests
{
    [Fact]
    public void StatsLineRoundTripsThroughTheProtocol()
    {
        var stats = new WorkerStats();
        stats.Record("GET", 200, TimeSpan.FromMilliseconds(3));
        stats.Record("GET", 404, TimeSpan.FromMilliseconds(30));
        stats.Record("BREW", 503, TimeSpan.FromSeconds(20));
        var line = Protocol.Stats + " " + stats.Format(inFlight: 2);
        var message = Protocol.Parse(line);
        Assert.NotNull(message);
        Assert.Equal(MessageKind.Stats, message.Kind);
        Assert.Contains("\"GET 2xx\":1", message.Text);
        Assert.Contains("\"GET 4xx\":1", message.Text);
        Assert.Contains("\"OTHER 5xx\":1", message.Text);
        Assert.Contains("\"inflight\":2", message.Text);
    }

    [Fact]
    public async Task TotalsAreMonotonicAcrossWorkersAndEachRequestCountsOnce()
    {
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        var a = new WorkerStats();
        for (var i = 0; i < 7; i++)
        {
            a.Record("GET", 200, TimeSpan.FromMilliseconds(2));
        }
        o.OnStats(101, a.Format(0));
        o.OnStats(101, a.Format(0)); // the same counts again: nothing new
        for (var i = 0; i < 3; i++)
        {
            a.Record("POST", 500, TimeSpan.FromMilliseconds(80));
        }
        o.OnStats(101, a.Format(0)); // the final line at exit
        o.OnControlClosed(101);

        var b = new WorkerStats(); // its successor starts from zero
        b.Record("GET", 200, TimeSpan.FromSeconds(12));
        o.OnStats(202, b.Format(0));
        o.OnStats(202, "{not json");

        var text = await o.Metrics.ExportAsync(CancellationToken.None);
        Assert.Contains("corral_requests_total{method=\"GET\",status_class=\"2xx\"} 8", text);
        Assert.Contains("corral_requests_total{method=\"POST\",status_class=\"5xx\"} 3", text);
        Assert.Contains("corral_request_duration_seconds_count 11", text);
        Assert.Contains("corral_request_duration_seconds_bucket{le=\"0.005\"} 7", text);
        Assert.Contains("corral_request_duration_seconds_bucket{le=\"0.1\"} 10", text);
        Assert.Contains("corral_request_duration_seconds_bucket{le=\"10\"} 10", text);
        Assert.Contains("corral_request_duration_seconds_bucket{le=\"+Inf\"} 11", text);
        // The sum stays exact: 7 x 2 ms + 3 x 80 ms + 12 s.
        var sum = text.Split('\n').Single(l => l.StartsWith("corral_request_duration_seconds_sum ", StringComparison.Ordinal));
        Assert.Equal(12.254, double.Parse(sum.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), 6);
    }

    [Fact]
    public void ListeningRowsOfProcNetTcpGiveTheAcceptQueue()
    {
        string[] lines =
        [
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
            "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000005 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0",
            "   1: 0100007F:1F40 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1",
        ];
        var row = Assert.Single(ListenQueue.ParseListening(lines));
        Assert.Equal((4242L, 5L), row);
    }

    [Theory]
    [InlineData("127.0.0.1:9100", true)]
    [InlineData("[::1]:9100", true)]
    [InlineData("localhost:0", true)]
    [InlineData("0.0.0.0:9100", true)]
    [InlineData("::1:9100", false)]
    [InlineData("9100", false)]
    [InlineData("host.example:9100", false)]
    public void MetricsBindIsHostColonPort(string text, bool valid) =>
        Assert.Equal(valid, MetricsServer.ParseBind(text, out _) is not null);

    [Theory]
    [InlineData(new string[0], "no control socket")]
    [InlineData(new[] { "-p", "x.pid" }, "no command")]
    [InlineData(new[] { "-p", "x.pid", "add" }, "bad command")]
    [InlineData(new[] { "-p", "x.pid", "add", "zero" }, "bad command")]
    [InlineData(new[] { "-p", "x.pid", "remove", "0" }, "bad command")]
    [InlineData(new[] { "-p", "x.pid", "kill" }, "bad command")]
    [InlineData(new[] { "-p", "x.pid", "--frob", "status" }, "unknown option")]
    [InlineData(new[] { "--control-socket", "/nonexistent/corral.ctl", "status" }, "no control socket at /nonexistent/corral.ctl")]
    public void CtlBadUsageIsOneLineAndExit2(string[] args, string expected)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(2, CtlCommand.Run(args, stdout, stderr));
        var line = Assert.Single(stderr.ToString().TrimEnd().Split('\n'));
        Assert.StartsWith("corral ctl: error: ", line);
        Assert.Contains(expected, line);
        Assert.Empty(stdout.ToString());
    }
}
