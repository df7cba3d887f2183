using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>The master in trouble: stopped (a debugger, a VM pause), killed, or started with signals ignored.</summary>
public sealed class MasterFaultTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    private static CorralProcess StartCorral(string app, params string[] args) =>
        CorralProcess.Start([.. args, "--log-level", "debug", app]);

    [Fact]
    public async Task AMasterStoppedLongerThanTheTimeoutKillsNoHealthyWorker()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "-w", "2", "-t", "5");
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);

        // Twice the timeout: the workers' heartbeats wait unread in their control sockets.
        Signal(corral.Pid, SIGSTOP);
        await Task.Delay(TimeSpan.FromSeconds(11));
        Signal(corral.Pid, SIGCONT);
        // Long enough for the master to read what the workers sent, judge them, and act.
        await Task.Delay(TimeSpan.FromSeconds(5));

        Assert.DoesNotContain(corral.Lines, l => l.Contains("WORKER TIMEOUT", StringComparison.Ordinal));
        Assert.Equal(workers, Children(corral.Pid));
        var served = new HashSet<int>();
        for (var i = 0; i < 20 && served.Count < 2; i++)
        {
            var (status, body) = await Http.GetAsync(port, "/pid");
            Assert.Equal(200, status);
            served.Add(int.Parse(body, CultureInfo.InvariantCulture));
        }
        Assert.Subset(workers, served);
        await corral.WaitForLineAsync(@"The master did not run for \d+(\.\d)? s", TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task AMasterStoppedUntilTheControlSocketIsFullBlocksNoWorkerThread()
    {
        var apps = await TestApps.GetAsync();
        using var corral = StartCorral(apps.TestApp, "-b", "127.0.0.1:0", "-w", "1", "-t", "5");
        var port = await corral.PortAsync();
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        var before = Threads(worker);

        // The worker's end of its control socket holds a few seconds of messages (see ControlChannel):
        // after that every heartbeat and stats line finds it full.
        Signal(corral.Pid, SIGSTOP);
        var stoppedAt = DateTime.UtcNow;
        try
        {
            var most = before;
            while (DateTime.UtcNow - stoppedAt < TimeSpan.FromSeconds(18))
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
                // The worker serves on while its master is stopped: it accepts from the shared socket itself.
                var started = DateTime.UtcNow;
                var (status, body) = await Http.GetAsync(port, "/pid", TimeSpan.FromSeconds(5));
                Assert.Equal((200, worker.ToString(CultureInfo.InvariantCulture)), (status, body));
                Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(2), $"a request took {(DateTime.UtcNow - started).TotalSeconds:0.0} s");
                most = Math.Max(most, Threads(worker));
            }
            // Blocked sends took a thread-pool thread each (3 a second, and the pool kept adding threads).
            Assert.True(most <= before + 6, $"the worker went from {before} to {most} threads while the master was stopped");
        }
        finally
        {
            Signal(corral.Pid, SIGCONT);
        }
        await Task.Delay(TimeSpan.FromSeconds(5));
        Assert.DoesNotContain(corral.Lines, l => l.Contains("WORKER TIMEOUT", StringComparison.Ordinal));
        Assert.Equal([worker], Children(corral.Pid));
        Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
    }

    [Fact]
    public async Task AKilledMastersWorkersLetGoOfThePortAtOnceAndFinishTheirRequests()
    {
        var apps = await TestApps.GetAsync();
        var port = FreePort();
        using var first = StartCorral(apps.TestApp, "-b", $"127.0.0.1:{port}", "-w", "2", "--graceful-timeout", "30");
        var orphans = await first.WaitForWorkersAsync(2, Boot);
        try
        {
            var slow = Http.GetAsync(port, "/sleep?ms=10000", TimeSpan.FromSeconds(30));
            await Task.Delay(500);

            Signal(first.Pid, SIGKILL);
            await first.WaitForLineAsync("Master is gone, stopping worker", TimeSpan.FromSeconds(5), occurrence: 2);
            // Nobody listens any more (within a moment of the log line): a new connection is refused, not
            // left waiting in a queue no one takes from.
            Assert.True(await RefusedWithinAsync(port, TimeSpan.FromSeconds(2)), "the killed master's workers still listen");

            // A new corral, started at once, binds the port at its first attempt and serves.
            using var second = StartCorral(apps.TestApp, "-b", $"127.0.0.1:{port}", "-w", "1");
            var worker = (await second.WaitForWorkersAsync(1, Boot)).Single();
            Assert.Equal((200, worker.ToString(CultureInfo.InvariantCulture)), await Http.GetAsync(port, "/pid"));
            Assert.DoesNotContain(second.Lines, l => l.Contains("Connection in use", StringComparison.Ordinal));
            Assert.False(slow.IsCompleted, "the orphan's request ended before the new corral served");

            // Meanwhile the orphan finished the request it had.
            Assert.Equal(200, (await slow).Status);
        }
        finally
        {
            foreach (var pid in orphans)
            {
                Kill(pid, SIGKILL);
            }
        }
    }

    [Theory]
    [InlineData(SIGINT)]
    [InlineData(SIGQUIT)]
    public async Task IntAndQuitStopAtOnceEvenWhenCorralInheritedThemIgnored(int signal)
    {
        // Started with & from a script, the shell ignores INT and QUIT (nohup: HUP), and so does
        // everything it execs: the master, and through it the workers.
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.StartWrapped("bash", ["-c", "trap '' INT QUIT HUP; exec \"$0\" \"$@\""],
            ["-b", "127.0.0.1:0", "-w", "2", "--graceful-timeout", "30", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);
        // Caught, not ignored (before, /proc showed the signal in SigIgn and not in SigCgt).
        Assert.All(workers.Append(corral.Pid), pid => Assert.Contains(signal, Signals(pid, "SigCgt")));
        Assert.Contains(SIGHUP, Signals(corral.Pid, "SigCgt")); // nohup's: HUP still reloads
        var slow = Http.GetAsync(port, "/sleep?ms=20000", TimeSpan.FromSeconds(30));
        await Task.Delay(300);

        Signal(corral.Pid, signal);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(5)));
        Assert.All(workers, pid => Assert.False(IsAlive(pid), $"worker {pid} still runs"));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => slow);
    }

    [Fact]
    public async Task AWorkerThatInheritedIntIgnoredStillExitsOnInt()
    {
        // Ctrl-C sends INT to the whole process group: each worker must exit at once too.
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.StartWrapped("bash", ["-c", "trap '' INT QUIT; exec \"$0\" \"$@\""],
            ["-b", "127.0.0.1:0", "-w", "1", "--log-level", "debug", apps.TestApp]);
        var worker = (await corral.WaitForWorkersAsync(1, Boot)).Single();
        Signal(worker, SIGINT);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (IsAlive(worker) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        Assert.False(IsAlive(worker), "the worker ignored INT");
    }

    /// <summary>A signal set of /proc/PID/status: SigIgn (ignored), SigCgt (caught by a handler).</summary>
    private static List<int> Signals(int pid, string set)
    {
        var mask = File.ReadLines($"/proc/{pid}/status").Single(l => l.StartsWith(set + ":", StringComparison.Ordinal))[(set.Length + 1)..].Trim();
        var bits = ulong.Parse(mask, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return [.. Enumerable.Range(1, 64).Where(s => (bits & (1UL << (s - 1))) != 0)];
    }

    private static async Task<bool> RefusedWithinAsync(int port, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        do
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await probe.ConnectAsync(IPAddress.Loopback, port);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                return true;
            }
            catch (SocketException)
            {
                // reset: it reached a queue as that closed
            }
            await Task.Delay(50);
        }
        while (DateTime.UtcNow < deadline);
        return false;
    }

    private static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private static void Signal(int pid, int signal) => Assert.True(Kill(pid, signal), $"kill({pid}, {signal}) failed");

    private static int Threads(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("Threads:", StringComparison.Ordinal))
            {
                return int.Parse(line["Threads:".Length..].Trim(), CultureInfo.InvariantCulture);
            }
        }
        throw new InvalidOperationException($"no Threads: line for pid {pid}");
    }
}
