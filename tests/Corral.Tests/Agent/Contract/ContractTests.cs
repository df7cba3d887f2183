using Corral.Agent.Contract;

namespace Corral.Tests;

/// <summary>
/// The wire between the master and the agent, pinned. A Native AOT app links its own agent, which may
/// be older or newer than the corral that runs it: if one of these fails, the contract changed, so raise
/// <see cref="AgentOptions.CurrentProtocol"/> and update the expected text here, together.
/// </summary>
public class ContractTests
{
    private const string RaiseTheProtocol = "the wire changed: raise AgentOptions.CurrentProtocol, then update this test";

    [Fact]
    public void TheOptionsAWorkerIsToldHaveThisShapeAtProtocol6()
    {
        Assert.Equal(6, AgentOptions.CurrentProtocol);
        var options = new AgentOptions
        {
            Protocol = AgentOptions.CurrentProtocol,
            ListenFds = [3, 4],
            ListenNames = ["http://127.0.0.1:8000", "unix:/run/app.sock"],
            ControlFd = 5,
            WorkerClass = WorkerClass.Gthread,
            Threads = 4,
            MaxRequests = 1000,
            MaxWorkerMemory = 536870912,
            Spare = true,
            RequestTimeout = 2,
            Warmup = new WarmupOptions { Requests = 2, Paths = ["/", "/health"] },
            AcceptLeader = "corral-accept-1",
            PackLeaderConnections = 16,
            Logs = new LogOptions { ErrorLogFile = "/var/log/e.log", AccessLogFile = "-", AccessLogFormat = "%(h)s" },
            Proxy = new ProxyOptions { SecureSchemeHeaders = new() { ["X-FORWARDED-PROTO"] = "https" } },
            HttpProtocols = "h2",
            Tls = new TlsFiles { CertFile = "/etc/c.pem" },
            Statsd = new StatsdOptions { Host = "127.0.0.1:8125", Prefix = "app." },
            AffinityDir = "/run/user/1000/corral-1-x",
            ProcessTitle = "shop: worker",
            User = new WorkerUser { Uid = 65534, Gid = 65534, Groups = [65534], Name = "nobody" },
        };
        const string Expected = """
            {"Protocol":6,"ListenFds":[3,4],"ListenNames":["http://127.0.0.1:8000","unix:/run/app.sock"],"ControlFd":5,"WorkerClass":"gthread","Threads":4,"WorkerConnections":1000,"KeepAlive":2,"GracefulTimeout":30,"RequestTimeout":2,"RequestTimeoutGrace":3,"MaxRequests":1000,"MaxWorkerMemory":536870912,"Spare":true,"Warmup":{"Requests":2,"Paths":["/","/health"],"Timeout":15},"AcceptLeader":"corral-accept-1","PackLeaderConnections":16,"Limits":{"RequestLine":4094,"RequestFields":100,"RequestFieldSize":8190,"RequestHeadersSize":65536},"Backlog":2048,"Logs":{"ErrorLogFile":"/var/log/e.log","Level":"info","AccessLogFile":"-","AccessLogFormat":"%(h)s","AccessLogJson":false},"Proxy":{"ForwardedAllowIps":"127.0.0.1","ProxyProtocol":false,"SecureSchemeHeaders":{"X-FORWARDED-PROTO":"https"}},"Tls":{"CertFile":"/etc/c.pem","KeyFile":null,"CaCerts":null},"HttpProtocols":"h2","Statsd":{"Host":"127.0.0.1:8125","Prefix":"app.","Tags":null},"AffinityDir":"/run/user/1000/corral-1-x","ProcessTitle":"shop: worker","User":{"Uid":65534,"Gid":65534,"Groups":[65534],"Name":"nobody"}}
            """;
        Assert.True(Expected == options.ToJson(), $"{RaiseTheProtocol}\nexpected {Expected}\nactual   {options.ToJson()}");
        Assert.Equal(Expected, AgentOptions.FromJson(Expected).ToJson());
    }

    [Fact]
    public void TheStatsReportHasThisShape()
    {
        var report = new WorkerStatsReport
        {
            Requests = new() { ["GET 2xx"] = 7 },
            BucketCounts = [7, 0],
            BucketSums = [0.014, 0],
            InFlight = 1,
            GcHeap = 1024,
            Rss = 4096,
            Pss = 2048,
        };
        const string Expected = """{"requests":{"GET 2xx":7},"bucket_counts":[7,0],"bucket_sums":[0.014,0],"inflight":1,"gc_heap":1024,"rss":4096,"pss":2048}""";
        Assert.True(Expected == report.ToJson(), $"{RaiseTheProtocol}\nexpected {Expected}\nactual   {report.ToJson()}");
        var back = WorkerStatsReport.TryParse(Expected)!;
        Assert.Equal(7, back.Requests["GET 2xx"]);
        Assert.Equal([7L, 0L], back.BucketCounts);
        Assert.Equal(2048, back.Pss);
    }

    [Fact]
    public void TheServingReportHasThisShape()
    {
        var report = new ServingReport
        {
            Protocols = "h2",
            Asked = "h2",
            Source = "the app's Kestrel:EndpointDefaults:Protocols",
            Tls = false,
            Replaced = ["http://0.0.0.0:5555"],
        };
        const string Expected = """{"protocols":"h2","asked":"h2","source":"the app\u0027s Kestrel:EndpointDefaults:Protocols","tls":false,"warning":null,"replaced":["http://0.0.0.0:5555"]}""";
        Assert.True(Expected == report.ToJson(), $"{RaiseTheProtocol}\nexpected {Expected}\nactual   {report.ToJson()}");
        Assert.Equal(report with { Replaced = [] }, ServingReport.TryParse(Expected)! with { Replaced = [] });
        Assert.Equal(["http://0.0.0.0:5555"], ServingReport.TryParse(Expected)!.Replaced);
        Assert.Null(ServingReport.TryParse("{"));
    }

    [Fact]
    public void TheControlLinesHaveThisShape()
    {
        Assert.Equal("hb 12 3 40 123456", Protocol.FormatHeartbeat(12, 3, 40, 123456));
        Assert.Equal(new Message(MessageKind.Heartbeat, 12, 3, 40, SentMs: 123456), Protocol.Parse("hb 12 3 40 123456"));
        Assert.Equal(new Message(MessageKind.Ready), Protocol.Parse("ready"));
        Assert.Equal(new Message(MessageKind.Recycle), Protocol.Parse("recycle"));
        Assert.Equal(new Message(MessageKind.Recycle, Text: "oom"), Protocol.Parse("recycle " + Protocol.OutOfMemory));
        Assert.Equal(new Message(MessageKind.Error, Text: "boom | at x"), Protocol.Parse(Protocol.FormatError("boom\nat x")));
        Assert.Equal(new Message(MessageKind.Stats, Text: "{}"), Protocol.Parse("stats {}"));
        Assert.Equal(new Message(MessageKind.Serving, Text: "{}"), Protocol.Parse("serving {}"));
        Assert.Equal(new Message(MessageKind.Hung, Hung: new HungRequest(31, "GET", "/hang/spin", "0HN1:00000002")), Protocol.Parse("hung 31 GET /hang/spin 0HN1:00000002"));
        Assert.Null(Protocol.Parse("hb 1 2 3")); // protocol 1's heartbeat: no send time
    }

    [Fact]
    public void ExitCodesAndSignalsAreGunicornsNumbers()
    {
        Assert.Equal((0, 1, 2, 3), (ExitCodes.Ok, ExitCodes.Error, ExitCodes.Usage, ExitCodes.WorkerBootError));
        Assert.Equal((1, 2, 3, 10, 12, 15, 21, 22, 28), (Signals.HUP, Signals.INT, Signals.QUIT, Signals.USR1, Signals.USR2, Signals.TERM, Signals.TTIN, Signals.TTOU, Signals.WINCH));
        Assert.Equal([Signals.INT, Signals.QUIT, Signals.TERM, Signals.USR1, Signals.USR2], Signals.WorkerHandled);
    }
}
