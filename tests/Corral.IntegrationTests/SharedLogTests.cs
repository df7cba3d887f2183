using System.Globalization;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>
/// The log files are shared by the master and every worker, of every generation: each process must
/// append (O_APPEND), and each line must reach the file in one write, or lines are overwritten or torn.
/// </summary>
public sealed partial class SharedLogTests : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Gunicorn's error-log line: "[2024-01-01 12:00:00 +0000] [PID] [LEVEL] text", and only one of them.</summary>
    [GeneratedRegex(@"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] \S")]
    private static partial Regex ErrorLine();

    [GeneratedRegex(@"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\]")]
    private static partial Regex ErrorLineHead();

    /// <summary>Gunicorn's default access-log line for the test's requests: h l u t "r" s b "f" "a".</summary>
    [GeneratedRegex(@"^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ""GET /\?id=(\d+) HTTP/1\.1"" 200 12 ""-"" ""-""$")]
    private static partial Regex AccessLine();

    [Fact]
    public async Task EveryRequestHasOneWholeAccessLineAndNoErrorLineIsTornAcrossRecycles()
    {
        var apps = await TestApps.GetAsync();
        var errorLog = Path.Combine(_dir, "error.log");
        var accessLog = Path.Combine(_dir, "access.log");
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-w", "3", "--max-requests", "200", "--max-requests-jitter", "50",
            "--error-logfile", errorLog, "--access-logfile", accessLog, "--log-level", "debug", apps.TestApp]);
        // The master writes this line before any worker starts (requests that come before a worker
        // is ready wait in the listening socket's queue).
        var port = await WaitForPortAsync(errorLog);

        // Three workers and their successors (--max-requests: a new generation every ~225 requests a
        // worker) write both files at once; the master writes the error log too. At least 2,000
        // requests, and on until three recycled workers have been replaced.
        const int MinRequests = 2000, MaxRequests = 60_000;
        var answered = new int[MaxRequests];
        var failures = new List<string>();
        var next = -1;
        var enough = false;
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var load = Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            int id;
            while (!Volatile.Read(ref enough) && !stop.IsCancellationRequested && (id = Interlocked.Increment(ref next)) < MaxRequests)
            {
                try
                {
                    var (status, _) = await Http.GetAsync(port, $"/?id={id}");
                    Interlocked.Increment(ref answered[id]);
                    if (status != 200)
                    {
                        lock (failures)
                        {
                            failures.Add($"id {id}: HTTP {status}");
                        }
                    }
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
                {
                    lock (failures)
                    {
                        failures.Add($"id {id}: {e.GetType().Name}: {e.Message}");
                    }
                }
            }
        })));
        while (!load.IsCompleted)
        {
            var bootedNow = BootingLine().Matches(await File.ReadAllTextAsync(errorLog)).Count;
            Volatile.Write(ref enough, Volatile.Read(ref next) >= MinRequests && bootedNow >= 3 + 3);
            await Task.WhenAny(load, Task.Delay(200));
        }
        await load;
        var requests = Math.Min(next + 1, MaxRequests);
        Assert.Empty(failures);
        Assert.All(answered.Take(requests), n => Assert.Equal(1, n));

        // A graceful stop once no worker is booting (a TERM can end a worker before its agent runs):
        // every worker writes what it has queued, then "Worker exiting".
        await WaitUntilThreeWorkersAsync(corral.Pid);
        corral.Signal(SIGTERM);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        var accessLines = File.ReadAllLines(accessLog);
        var malformed = accessLines.Where(l => !AccessLine().IsMatch(l)).Take(5).ToList();
        Assert.True(malformed.Count == 0, $"malformed access-log lines ({accessLines.Length} lines), e.g.:\n{string.Join('\n', malformed)}");
        var logged = new int[MaxRequests];
        foreach (var line in accessLines)
        {
            logged[int.Parse(AccessLine().Match(line).Groups[1].Value, CultureInfo.InvariantCulture)]++;
        }
        var wrong = Enumerable.Range(0, MaxRequests).Where(i => logged[i] != (i < requests ? 1 : 0)).ToList();
        Assert.True(wrong.Count == 0, $"{requests} responses, {accessLines.Length} access-log lines; {wrong.Count} requests not logged exactly once (e.g. id {string.Join(", ", wrong.Take(5))})");

        var errorLines = File.ReadAllLines(errorLog);
        var torn = errorLines.Where(l => !ErrorLine().IsMatch(l) || ErrorLineHead().Matches(l).Count != 1).Take(5).ToList();
        Assert.True(torn.Count == 0, $"torn error-log lines ({errorLines.Length} lines), e.g.:\n{string.Join('\n', torn)}");
        // Nothing lost either: every worker the master booted said it was exiting, once.
        var booted = errorLines.Select(l => BootingLine().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToList();
        Assert.True(booted.Count >= 3 + 3, $"{booted.Count} workers booted: --max-requests did not recycle three times");
        foreach (var pid in booted)
        {
            Assert.True(errorLines.Count(l => l.EndsWith($"Worker exiting (pid: {pid})", StringComparison.Ordinal)) == 1,
                $"worker {pid}: not one \"Worker exiting\" line:\n{string.Join('\n', errorLines.Where(l => l.Contains(pid, StringComparison.Ordinal)))}");
        }
        Assert.Single(errorLines, l => l.EndsWith("Shutting down: Master", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"Booting worker with pid: (\d+)$", RegexOptions.Multiline)]
    private static partial Regex BootingLine();

    /// <summary>
    /// Waits until the master has just its three workers for a second: no successor boots, no
    /// recycled worker drains (a successor only replaces a worker once it is ready). Not from the log
    /// lines: the lines this test is about may be the ones missing.
    /// </summary>
    private static async Task WaitUntilThreeWorkersAsync(int master)
    {
        var deadline = DateTime.UtcNow + Boot;
        var steadySince = DateTime.UtcNow;
        while (DateTime.UtcNow < deadline)
        {
            if (Children(master).Count != 3)
            {
                steadySince = DateTime.UtcNow;
            }
            else if (DateTime.UtcNow - steadySince > TimeSpan.FromSeconds(1))
            {
                return;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"corral still has {Children(master).Count} workers after {Boot.TotalSeconds} s");
    }

    private static async Task<int> WaitForPortAsync(string errorLog)
    {
        var deadline = DateTime.UtcNow + Boot;
        while (true)
        {
            var text = File.Exists(errorLog) ? await File.ReadAllTextAsync(errorLog) : "";
            var m = Regex.Match(text, @"Listening at: http://[^ ]+:(\d+) ");
            if (m.Success)
            {
                return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"corral did not start within {Boot.TotalSeconds} s:\n{text}");
            }
            await Task.Delay(100);
        }
    }
}
