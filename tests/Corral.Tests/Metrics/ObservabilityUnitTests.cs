using Corral.Agent.Contract;
using Corral.Agent.Metrics;
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

    /// <summary>
    /// A stats line is the worker's JSON, read on the master's loop: JSON of another shape (found by
    /// fuzz/, the control target) is ignored where it does not fit, never thrown out of the loop.
    /// </summary>
    [Theory]
    [InlineData("1")]
    [InlineData("[]")]
    [InlineData("\"x\"")]
    [InlineData("null")]
    [InlineData("{\"rss\":{},\"pss\":\"1\",\"gc_heap\":[]}")]
    [InlineData("{\"requests\":{\"GET 2xx\":\"7\",\"POST 2xx\":{}}}")]
    [InlineData("{\"buckets\":[[\"1\",0.5],[1,\"x\"],[{},null],7]}")]
    [InlineData("{\"bucket_counts\":[\"1\",0.5],\"bucket_sums\":[1,\"x\"]}")]
    [InlineData("{\"bucket_counts\":[1,2,3],\"bucket_sums\":[]}")]
    [InlineData("{\"bucket_counts\":{},\"inflight\":1e308}")]
    public async Task StatsJsonOfAnotherShapeIsIgnored(string json)
    {
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        o.OnStats(101, json);
        var good = new WorkerStats();
        good.Record("GET", 200, TimeSpan.FromMilliseconds(2));
        o.OnStats(101, good.Format(0));

        var text = await o.Metrics.ExportAsync(CancellationToken.None);
        Assert.Contains("corral_requests_total{method=\"GET\",status_class=\"2xx\"} 1", text);
        Assert.Contains("corral_request_duration_seconds_count 1", text);
    }

    /// <summary>
    /// A worker's counts never come near 2^63; a stats line that claims so (found by fuzz/, the
    /// control target) made prometheus-net's histogram count overflow, and every later scrape fail.
    /// </summary>
    [Fact]
    public async Task AnAbsurdRequestCountDoesNotBreakTheMetrics()
    {
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        o.OnStats(101, """{"bucket_counts":[9,0,1,3,9223372036854775807],"bucket_sums":[4,0,1,0.24,12]}""");
        var text = await o.Metrics.ExportAsync(CancellationToken.None); // threw OverflowException
        Assert.Contains("corral_request_duration_seconds_count 13", text);

        o.OnStats(102, """{"bucket_counts":[9223372036854775807],"bucket_sums":[0.001]}"""); // a bucket that wrapped round to negative
        var good = new WorkerStats();
        good.Record("GET", 200, TimeSpan.FromMilliseconds(2));
        o.OnStats(103, good.Format(0));
        text = await o.Metrics.ExportAsync(CancellationToken.None);
        Assert.Contains("corral_request_duration_seconds_count 14", text);
        Assert.Contains("corral_request_duration_seconds_bucket{le=\"0.005\"} 10", text);
        Assert.DoesNotContain("} -", text);
        Assert.Contains("corral_requests_total{method=\"GET\",status_class=\"2xx\"} 1", text);
    }

    [Fact]
    public void PssIsTheKilobytesOfThePssLineOfSmapsRollup()
    {
        const string rollup = """
            55d0c0a00000-7ffc4e9f1000 ---p 00000000 00:00 0                          [rollup]
            Rss:               96692 kB
            SwapPss:             512 kB
            Pss:               71966 kB
            Pss_Dirty:         38231 kB
            Pss_Anon:          22168 kB
            """;
        Assert.Equal(71966L * 1024, WorkerStats.ParsePss(rollup));
        Assert.Equal(0, WorkerStats.ParsePss("Rss: 1 kB\nSwapPss: 7 kB\nPss_Anon: 3 kB\n"));
        Assert.Equal(0, WorkerStats.ParsePss("Pss: lots kB\n"));
        Assert.Equal(0, WorkerStats.ReadPss("/nonexistent/smaps_rollup"));
    }

    [Fact]
    public void ThisProcessHasAPssBetweenZeroAndItsRss()
    {
        var pss = WorkerStats.ReadPss("/proc/self/smaps_rollup");
        var rss = WorkerStats.ReadRss();
        if (!File.Exists("/proc/self/smaps_rollup"))
        {
            Assert.Equal(0, pss); // a kernel before 4.14
            return;
        }
        Assert.InRange(pss, 1024 * 1024, rss);
    }

    [Fact]
    public async Task PssTravelsFromTheStatsLineToSnapshotTableAndGauge()
    {
        var stats = new WorkerStats();
        var json = stats.Format(0);
        using (var doc = System.Text.Json.JsonDocument.Parse(json))
        {
            var root = doc.RootElement;
            var rss = root.GetProperty("rss").GetInt64();
            var pss = root.GetProperty("pss").GetInt64();
            Assert.InRange(pss, 1, rss);
        }

        var rig = new ArbiterRig("-w", "2").Booted();
        var (known, unknown) = (rig.Pids[0], rig.Pids[1]);
        var o = new Observatory(new ListenQueue([]), new MasterMetrics());
        o.OnStats(known, """{"requests":{},"bucket_counts":[],"bucket_sums":[],"inflight":0,"gc_heap":1000,"rss":83886080,"pss":52428800}""");
        o.OnStats(unknown, """{"requests":{},"bucket_counts":[],"bucket_sums":[],"inflight":0,"gc_heap":1000,"rss":83886080,"pss":0}""");
        var snapshot = o.Snapshot(rig.Arbiter);
        Assert.Equal(52428800, snapshot.Workers.Single(w => w.Pid == known).Pss);
        Assert.Equal(0, snapshot.Workers.Single(w => w.Pid == unknown).Pss);
        var roundTripped = MasterSnapshot.FromJson(snapshot.ToJson())!;
        Assert.Contains("\"pss_bytes\":52428800", snapshot.ToJson());
        Assert.Equal(52428800, roundTripped.Workers.Single(w => w.Pid == known).Pss);

        var table = CtlCommand.FormatStatus(roundTripped).Split('\n');
        Assert.Matches(@"^PID .* RSS +PSS +GC HEAP$", table.Single(l => l.StartsWith("PID", StringComparison.Ordinal)));
        Assert.Matches(@" 80\.0M +50\.0M +0\.0M$", table.Single(l => l.StartsWith($"{known} ", StringComparison.Ordinal)));
        Assert.Matches(@" 80\.0M +- +0\.0M$", table.Single(l => l.StartsWith($"{unknown} ", StringComparison.Ordinal)));

        o.Metrics.SetGauges(snapshot);
        var text = await o.Metrics.ExportAsync(CancellationToken.None);
        Assert.Contains($"corral_worker_pss_bytes{{pid=\"{known}\"}} 52428800", text);
        Assert.DoesNotContain($"corral_worker_pss_bytes{{pid=\"{unknown}\"}}", text); // unknown: no series rather than a false 0
        Assert.Contains($"corral_worker_rss_bytes{{pid=\"{unknown}\"}} 83886080", text);

        // A worker that is gone takes its series with it.
        o.Metrics.SetGauges(snapshot with { Workers = [.. snapshot.Workers.Where(w => w.Pid == unknown)] });
        Assert.DoesNotContain($"corral_worker_pss_bytes{{pid=\"{known}\"}}", await o.Metrics.ExportAsync(CancellationToken.None));
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
