using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests;

/// <summary>
/// Out of file descriptors (EMFILE), a worker cannot open a file or a socket, and the runtime cannot
/// start a thread: what Corral runs on its own in the worker (stats, heartbeat, statsd, the accept
/// leader) must not take it down, and connections must not be what runs it out.
/// </summary>
public sealed class FdExhaustionTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task WorkersAtALowDescriptorLimitKeepRunningAndServe()
    {
        var apps = await TestApps.GetAsync();
        // 256 descriptors for the master and each worker (soft and hard: the runtime raises the soft
        // limit to the hard one); an idle worker already holds about 190 (two per loaded assembly).
        using var corral = CorralProcess.StartWrapped("prlimit", ["--nofile=256:256"],
            ["-b", "127.0.0.1:0", "-w", "2", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var workers = await corral.WaitForWorkersAsync(2, Boot);

        // 1. The app itself uses every descriptor for 3 s: the stats timer (every second) cannot read
        // /proc/self/statm. It says so, once, and the worker lives on. First the workers settle: the
        // runtime cannot start a thread without descriptors either, and a thread pool still growing
        // after the boot would end the process (the runtime's doing, not Corral's).
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(200, (await Http.GetAsync(port, "/")).Status);
        }
        await Task.Delay(TimeSpan.FromSeconds(3));
        (int Status, string Body) exhausted;
        try
        {
            exhausted = await Http.GetAsync(port, "/exhaust-fds?ms=3000");
        }
        catch (HttpRequestException e)
        {
            throw new InvalidOperationException($"GET /exhaust-fds failed: {e.Message}. Output:\n{corral.Output}", e);
        }
        var (status, opened) = exhausted;
        Assert.Equal(200, status);
        Assert.True(int.Parse(opened, CultureInfo.InvariantCulture) > 0);
        await corral.WaitForLineAsync(@"Reading the worker's memory \(/proc/self/statm\) failed: out of file descriptors", TimeSpan.FromSeconds(5));

        // 2. 400 connections that send nothing: each worker takes what its descriptors allow, the
        // rest wait in the listening socket's queue (taking them all would leave the runtime no
        // descriptor to start a thread with, and its thread pool would end the worker).
        var connections = new List<Socket>();
        try
        {
            await Task.WhenAll(Enumerable.Range(0, 400).Select(async _ =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                lock (connections)
                {
                    connections.Add(s);
                }
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
            }));
            await corral.WaitForLineAsync("Worker at its file descriptor limit", TimeSpan.FromSeconds(10));
            await Task.Delay(TimeSpan.FromSeconds(3)); // several stats reports, heartbeats, accepts at the limit
        }
        finally
        {
            foreach (var s in connections)
            {
                s.Dispose();
            }
        }

        // Served once the connections are gone.
        var served = false;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!served && DateTime.UtcNow < until)
        {
            try
            {
                served = (await Http.GetAsync(port, "/", TimeSpan.FromSeconds(5))).Status == 200;
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
                await Task.Delay(200);
            }
        }
        Assert.True(served, "not served after the connections closed:\n" + corral.Output);

        // No worker died: the same two, and no other booted.
        Assert.True(corral.CountLines("Booting worker with pid") == 2, corral.Output);
        Assert.DoesNotContain(corral.Lines, l => Regex.IsMatch(l, @"exited with code|was sent|Worker exiting|WORKER TIMEOUT|Unhandled exception"));
        Assert.All(workers, pid => Assert.True(ProcessTree.IsAlive(pid)));
        // Each kind of trouble is logged at most once a minute by each worker.
        foreach (var kind in new[] { "failed: out of file descriptors", "Worker at its file descriptor limit" })
        {
            Assert.All(corral.Lines.Where(l => l.Contains(kind, StringComparison.Ordinal)).GroupBy(l => Regex.Match(l, @"^\[[^\]]+\] \[(\d+)\]").Groups[1].Value),
                g => Assert.Single(g));
        }
    }
}
