using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>The master's duties beyond #2's acceptance list: listeners, logs, recycling, environment, errors.</summary>
public sealed class MasterTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static CorralProcess StartCorral(string app, params string[] args) =>
        CorralProcess.Start([.. args, "--log-level", "debug", app]);

    [Fact]
    public async Task BindThatFailsIsOneLineAndExit1()
    {
        var apps = await TestApps.GetAsync();
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var port = ((IPEndPoint)taken.LocalEndPoint!).Port;

        using var corral = StartCorral(apps.TestApp, "-b", $"127.0.0.1:{port}");
        Assert.Equal(1, await corral.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        // Gunicorn's retry (5 attempts, 1 s apart), then one line that says it failed.
        Assert.Equal(5, corral.CountLines($@"\[ERROR\] Connection in use: 127\.0\.0\.1:{port}$"));
        Assert.Equal(4, corral.CountLines(@"\[ERROR\] Retrying in 1 second\.$"));
        var errors = corral.Lines.Where(l => l.Contains("[ERROR]", StringComparison.Ordinal)).ToList();
        Assert.EndsWith("Shutting down: Master", errors[^1]);
        var error = errors[^2];
        Assert.Contains($"Can't connect to 127.0.0.1:{port}", error);
        Assert.Contains("in use", error);
        Assert.Single(errors, l => l.Contains("Can't connect", StringComparison.Ordinal));
        Assert.Empty(Children(corral.Pid));
    }

    [Fact]
    public async Task BindInUseIsRetriedAndServesOnceTheAddressIsFree()
    {
        var apps = await TestApps.GetAsync();
        var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var port = ((IPEndPoint)taken.LocalEndPoint!).Port;

        using var corral = StartCorral(apps.TestApp, "-b", $"127.0.0.1:{port}");
        await corral.WaitForLineAsync(@"\[ERROR\] Retrying in 1 second\.", TimeSpan.FromSeconds(10));
        taken.Dispose();
        Assert.Equal(port, await corral.PortAsync(TimeSpan.FromSeconds(10)));
        await corral.WaitForWorkersAsync(1, Boot);
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        Assert.DoesNotContain(corral.Lines, l => l.Contains("Can't connect", StringComparison.Ordinal));
    }

    [Fact]
    public async Task UnixSocketIsServedAndRemovedAtExit()
    {
        var apps = await TestApps.GetAsync();
        var path = Path.Combine(_dir, "corral.sock");
        using var corral = StartCorral(apps.TestApp, "-b", "unix:" + path, "-w", "2");
        await corral.WaitForLineAsync("Listening at: unix:" + Regex.Escape(path), Boot);
        await corral.WaitForWorkersAsync(2, Boot);

        using var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        });
        Assert.Equal("Hello World!", await client.GetStringAsync("http://localhost/"));

        corral.Signal(SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(File.Exists(path), "the unix socket was left behind");
    }

    [Fact]
    public async Task Usr1ReopensTheErrorAndAccessLogs()
    {
        var apps = await TestApps.GetAsync();
        var errorLog = Path.Combine(_dir, "error.log");
        var accessLog = Path.Combine(_dir, "access.log");
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "--error-logfile", errorLog, "--access-logfile", accessLog);
        var port = await WaitForPortInFileAsync(errorLog);
        await WaitForFileAsync(errorLog, "Worker ready");
        Assert.Equal(404, (await Http.GetAsync(port, "/first")).Status);
        await WaitForFileAsync(accessLog, "GET /first");

        // logrotate's way: rename the files, then USR1.
        File.Move(errorLog, errorLog + ".1");
        File.Move(accessLog, accessLog + ".1");
        corral.Signal(SIGUSR1);
        await WaitForFileAsync(errorLog + ".1", "Handling signal: usr1");
        await Task.Delay(500); // the workers handle their USR1 asynchronously
        await Http.GetAsync(port, "/second");
        await WaitForFileAsync(accessLog, "GET /second");
        corral.Signal(SIGTTIN);
        await WaitForFileAsync(errorLog, "Handling signal: ttin");
        Assert.DoesNotContain("GET /second", File.ReadAllText(accessLog + ".1"));
        Assert.Contains("GET /first", File.ReadAllText(accessLog + ".1"));
    }

    [Fact]
    public async Task MaxRequestsRecyclesTheWorkerWithoutAFailedRequest()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "-w", "1", "--max-requests", "20");
        var port = await corral.PortAsync();
        var first = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        // The successor boots while the old worker keeps serving, then the old one drains.
        var pids = new HashSet<int>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (pids.Count < 2 && DateTime.UtcNow < deadline)
        {
            var (status, body) = await Http.GetAsync(port, "/pid");
            Assert.Equal(200, status);
            pids.Add(int.Parse(body, CultureInfo.InvariantCulture));
        }
        Assert.Contains(first, pids);
        Assert.True(pids.Count >= 2, $"served by {pids.Count} worker(s) only");
        await corral.WaitForLineAsync("Autorestarting worker after current request", TimeSpan.FromSeconds(5));
        Assert.DoesNotContain(corral.Lines, l => l.Contains("[ERROR]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AWorkerKilledBySignalLeavesNoRuntimeFilesBehind()
    {
        // The runtime makes a debugger pipe pair and a diagnostics socket in $TMPDIR and removes them
        // at exit; a worker that dies by SIGKILL cannot, so the master does.
        var apps = await TestApps.GetAsync();
        var tmp = Directory.CreateDirectory(Path.Combine(_dir, "tmp")).FullName;
        string[] FilesOf(int pid) =>
            [.. Directory.GetFiles(tmp, $"clr-debug-pipe-{pid}-*"), .. Directory.GetFiles(tmp, $"dotnet-diagnostic-{pid}-*")];
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "-w", "1", "-e", "TMPDIR=" + tmp);
        var killed = (await corral.WaitForWorkersAsync(1, Boot)).Single();
        Assert.Equal(3, FilesOf(killed).Length);

        Kill(killed, SIGKILL);
        var successor = (await corral.WaitForWorkersAsync(1, Boot, gone: [killed])).Single();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (FilesOf(killed).Length > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        Assert.Empty(FilesOf(killed));
        // A live worker's files stay: they are how dotnet-counters and dotnet-trace find it.
        Assert.Equal(3, FilesOf(successor).Length);
        var port = await corral.PortAsync();
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
    }

    [Fact]
    public async Task EnvFlagReachesEveryWorker()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "-e", "GREETING=hej=då", "-e", "OTHER=1");
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        Assert.Equal((200, "hej=då"), await Http.GetAsync(port, "/env/GREETING"));
        // corral's own plumbing does not leak into the app.
        Assert.Equal((200, ""), await Http.GetAsync(port, "/env/CORRAL_AGENT"));
    }

    [Fact]
    public async Task ANonWebAppIsRefusedWithTheReasonBeforeAnyWorkerStarts()
    {
        // A console app's runtimeconfig.json names only Microsoft.NETCore.App, as a worker service's
        // does (StartupErrorTests): exit 2 with one line, no worker.
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", apps.ConsoleDll]);
        Assert.Equal(2, await corral.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        var error = Assert.Single(corral.Lines, l => l.Contains("[ERROR]", StringComparison.Ordinal));
        Assert.Contains("not an ASP.NET Core app", error);
        Assert.DoesNotContain(corral.Lines, l => l.Contains("Booting worker", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheAppsOwnEndpointIsOverriddenAndSaysSo()
    {
        var apps = await TestApps.GetAsync();
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var ownPort = ((IPEndPoint)probe.LocalEndPoint!).Port;
        probe.Dispose();

        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp],
            new Dictionary<string, string> { ["TESTAPP_URLS"] = $"http://localhost:{ownPort}", ["ASPNETCORE_URLS"] = "http://127.0.0.1:1" });
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        await corral.WaitForLineAsync("Overriding the app's own URLs and Kestrel endpoints", TimeSpan.FromSeconds(2));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => Http.GetAsync(ownPort, "/"));
    }

    [Fact]
    public async Task IntStopsAtOnceEvenWithARequestInFlight()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "--graceful-timeout", "20");
        var port = await corral.PortAsync();
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();
        var slow = Http.GetAsync(port, "/sleep?ms=15000");
        await Task.Delay(300);

        corral.Signal(SIGINT);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(5)));
        Assert.False(IsAlive(worker));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => slow);
    }

    [Fact]
    public async Task TermLetsAnInFlightRequestFinish()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "--graceful-timeout", "20");
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        var slow = Http.GetAsync(port, "/sleep?ms=2000");
        await Task.Delay(300);

        corral.Signal(SIGTERM);
        Assert.Equal(200, (await slow).Status);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [InlineData("TESTAPP_START_DELAY_MS", "TestApp: a hosted service starts")]
    [InlineData("TESTAPP_SLEEP_AT_START_MS", "TestApp: sleeps")]
    public async Task TermWhileNewWorkersBootStopsThemQuietly(string slowVariable, string slowLine)
    {
        // A stop that meets a worker still booting: before it builds its host (TERM's default action
        // ends the process), or while the host starts (the generic host cancels the start and the
        // app's Run() throws OperationCanceledException). Either way the worker did as it was told.
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "-w", "2", "-e", $"{slowVariable}=4000");
        var first = await corral.WaitForWorkersAsync(2, Boot);

        corral.Signal(SIGHUP);
        // Both new workers are inside their 4 s of slowness.
        await corral.WaitForLineAsync(slowLine, Boot, occurrence: 4);
        Assert.Equal(2, corral.CountLines("Worker ready"));
        corral.Signal(SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(20)));

        var errors = corral.Lines.Where(l => l.Contains("[ERROR]", StringComparison.Ordinal) || l.Contains("Unhandled exception", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 0, corral.Output);
        Assert.Equal(2, corral.CountLines(@"Worker stopped while booting \(pid: \d+\)"));
        Assert.All(first, pid => Assert.False(IsAlive(pid)));
    }

    [Fact]
    public async Task SystemdSocketActivationIsUsed()
    {
        var apps = await TestApps.GetAsync();
        var port = FreePort();
        using var corral = CorralProcess.StartWrapped("systemd-socket-activate", ["-l", $"127.0.0.1:{port}"],
            ["--log-level", "debug", apps.TestApp]);
        // systemd-socket-activate starts corral on the first connection, which waits in the queue.
        await corral.WaitForLineAsync($"Listening on 127.0.0.1:{port}", Boot);
        Assert.Equal((200, "Hello World!"), await Http.GetAsync(port, "/", Boot));
        await corral.WaitForLineAsync($@"Listening at: http://127\.0\.0\.1:{port} ", Boot);
    }

    [Fact]
    public async Task ConfigFileIsReadAndReReadOnHup()
    {
        var apps = await TestApps.GetAsync();
        var config = Path.Combine(_dir, "corral.json");
        File.WriteAllText(config, """{ "workers": 1, "bind": ["127.0.0.1:0"], "loglevel": "debug" }""");
        using var corral = CorralProcess.Start(["-c", config, apps.TestApp]);
        await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);

        File.WriteAllText(config, """{ "workers": 3, "bind": ["127.0.0.1:0"], "loglevel": "debug" }""");
        corral.Signal(SIGHUP);
        await corral.WaitForWorkersAsync(3, Boot);

        File.WriteAllText(config, """{ "workers": "many" }""");
        corral.Signal(SIGHUP);
        await corral.WaitForLineAsync("Reload aborted", TimeSpan.FromSeconds(5));
        Assert.Contains(corral.Lines, l => l.Contains("workers", StringComparison.Ordinal) && l.Contains("'many'", StringComparison.Ordinal));
        Assert.Equal(3, (await corral.WaitForWorkersAsync(3, TimeSpan.FromSeconds(5))).Count);
    }

    [Fact]
    public async Task AccessLogUsesGunicornsDefaultFormat()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "--access-logfile", "-");
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);
        await Http.GetAsync(port, "/bytes?n=5");
        var line = (await corral.WaitForLineAsync(@"^127\.0\.0\.1 - - \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ""GET /bytes\?n=5 HTTP/1\.1"" 200 5 ""-"" ""-""$", TimeSpan.FromSeconds(5))).Value;
        Assert.NotEmpty(line);
    }

    [Fact]
    public async Task RequestLimitsAreGunicornsFlagsOnKestrel()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "--limit-request-line", "200",
            "--limit-request-fields", "12", "--limit-request-field_size", "300");
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(1, Boot);

        Assert.Equal(200, (await Http.GetAsync(port, "/env/" + new string('a', 100))).Status);
        Assert.Equal(414, await RawStatusAsync(port, "/env/" + new string('a', 300), []));
        Assert.Equal(200, await RawStatusAsync(port, "/", Enumerable.Range(0, 8).Select(i => $"X-H{i}: v").ToArray()));
        Assert.Equal(431, await RawStatusAsync(port, "/", Enumerable.Range(0, 20).Select(i => $"X-H{i}: v").ToArray()));
        Assert.Equal(431, await RawStatusAsync(port, "/", ["X-Big: " + new string('b', 400)]));
    }

    /// <summary>One raw HTTP/1.1 request (HttpClient would refuse or reshape some of these), returning the status.</summary>
    private static async Task<int> RawStatusAsync(int port, string target, string[] headers)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port);
        var request = $"GET {target} HTTP/1.1\r\nHost: x\r\n{string.Concat(headers.Select(h => h + "\r\n"))}Connection: close\r\n\r\n";
        await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(request));
        var buffer = new byte[4096];
        var n = await socket.ReceiveAsync(buffer);
        var statusLine = System.Text.Encoding.ASCII.GetString(buffer, 0, n).Split("\r\n")[0];
        return int.Parse(statusLine.Split(' ')[1], CultureInfo.InvariantCulture);
    }

    private static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private static async Task<int> WaitForPortInFileAsync(string file)
    {
        var text = await WaitForFileAsync(file, "Listening at: http://");
        var m = Regex.Match(text, @"Listening at: http://[^ ]+:(\d+) ");
        return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static async Task<string> WaitForFileAsync(string file, string needle)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var text = File.Exists(file) ? File.ReadAllText(file) : "";
            if (text.Contains(needle, StringComparison.Ordinal))
            {
                return text;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"'{needle}' did not appear in {file}:\n{text}");
            }
            await Task.Delay(100);
        }
    }
}
