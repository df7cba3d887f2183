using System.Globalization;
using Corral.Agent.Contract;

namespace Corral.Agent.Metrics;

/// <summary>
/// What a worker has served since it started, for the master's metrics: requests by method and status
/// class, a request-duration histogram (fixed buckets, each with its count and the sum of its
/// durations), and, read when a report is made, in-flight requests, GC heap size, RSS and PSS.
/// Lock-free: the middleware records from any thread; <see cref="Format"/> reads a near-consistent
/// snapshot (it is called from one thread at a time: the stats timer, then once at exit).
/// </summary>
public sealed class WorkerStats
{
    /// <summary>Prometheus' default buckets (seconds, upper bounds inclusive); +Inf is implicit.</summary>
    public static readonly double[] Buckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    /// <summary>Methods counted by name; any other method counts as OTHER (a bounded label set).</summary>
    public static readonly string[] Methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"];

    /// <summary>Status classes 1xx..5xx; anything outside 100..599 counts as 5xx.</summary>
    public static readonly string[] StatusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"];

    private readonly long[] _requests = new long[Methods.Length * StatusClasses.Length];
    private readonly long[] _bucketCounts = new long[Buckets.Length + 1];
    private readonly long[] _bucketTicks = new long[Buckets.Length + 1]; // Stopwatch ticks: exact integer sums

    /// <summary>
    /// PSS is read at every this many-th report (the first one included): reading smaps_rollup walks the
    /// process's page tables: 1.3-3.4 ms for a SeedApp worker (measured; /proc/self/statm: ~10 us).
    /// </summary>
    public const int PssEvery = 5;

    private const string SmapsRollup = "/proc/self/smaps_rollup";
    private int _reports;
    private long _pss;
    private long _rss;

    public void Record(string method, int status, TimeSpan duration)
    {
        var m = Array.IndexOf(Methods, method);
        if (m < 0 || m == Methods.Length - 1)
        {
            m = Methods.Length - 1;
        }
        var c = status is >= 100 and <= 599 ? status / 100 - 1 : 4;
        Interlocked.Increment(ref _requests[m * StatusClasses.Length + c]);
        var seconds = duration.TotalSeconds;
        var b = 0;
        while (b < Buckets.Length && seconds > Buckets[b])
        {
            b++;
        }
        Interlocked.Add(ref _bucketTicks[b], duration.Ticks);
        Interlocked.Increment(ref _bucketCounts[b]);
    }

    /// <summary>The "stats" line's report (<see cref="WorkerStatsReport"/>), as JSON.</summary>
    public string Format(int inFlight) => Report(inFlight).ToJson();

    /// <summary>The counts so far, and the memory now.</summary>
    public WorkerStatsReport Report(int inFlight)
    {
        if (_reports++ % PssEvery == 0)
        {
            _pss = ReadPss(SmapsRollup);
        }
        var requests = new Dictionary<string, long>();
        for (var m = 0; m < Methods.Length; m++)
        {
            for (var c = 0; c < StatusClasses.Length; c++)
            {
                var n = Volatile.Read(ref _requests[m * StatusClasses.Length + c]);
                if (n > 0)
                {
                    requests[Methods[m] + " " + StatusClasses[c]] = n;
                }
            }
        }
        var counts = new long[_bucketCounts.Length];
        var sums = new double[_bucketCounts.Length];
        for (var b = 0; b < _bucketCounts.Length; b++)
        {
            // Count first: a request recorded between the two reads shows up in the sum a report early, never the count.
            counts[b] = Volatile.Read(ref _bucketCounts[b]);
            sums[b] = TimeSpan.FromTicks(Volatile.Read(ref _bucketTicks[b])).TotalSeconds;
        }
        return new WorkerStatsReport
        {
            Requests = requests,
            BucketCounts = counts,
            BucketSums = sums,
            InFlight = inFlight,
            GcHeap = GC.GetTotalMemory(false),
            Rss = _rss = ReadRssOr(_rss),
            Pss = _pss,
        };
    }

    /// <summary>Resident set size in bytes (0 where it cannot be read): <see cref="ReadRssOr"/>(0).</summary>
    public static long ReadRss() => ReadRssOr(0);

    /// <summary>
    /// Resident set size in bytes, from /proc/self/statm. Where it cannot be read (out of file
    /// descriptors: EMFILE), <paramref name="last"/>, the value of the previous report, and the
    /// failure is logged (at most once a minute). Never throws: the stats timer calls it. (No
    /// fallback to Process.WorkingSet64: it reads /proc too, and its assembly, loaded on first use,
    /// cannot be loaded without a free descriptor.)
    /// </summary>
    public static long ReadRssOr(long last)
    {
        try
        {
            var fields = File.ReadAllText("/proc/self/statm").Split(' ');
            return long.Parse(fields[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        }
        catch (Exception e)
        {
            Background.Report("Reading the worker's memory (/proc/self/statm)", e);
            return last;
        }
    }

    /// <summary>
    /// Proportional set size in bytes (the "Pss:" line of smaps_rollup, in kB): resident pages, each shared
    /// one divided by the number of processes that map it, so the workers' PSS add up to what they use
    /// together. 0 where it cannot be read (kernels before 4.14 have no smaps_rollup).
    /// </summary>
    public static long ReadPss(string path)
    {
        try
        {
            return ParsePss(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return 0;
        }
    }

    /// <summary>The "Pss:" line of smaps_rollup text, in bytes; 0 when there is none (not "SwapPss:").</summary>
    public static long ParsePss(string smapsRollup)
    {
        foreach (var line in smapsRollup.AsSpan().EnumerateLines())
        {
            if (!line.StartsWith("Pss:", StringComparison.Ordinal))
            {
                continue;
            }
            var value = line[4..].Trim();
            if (value.EndsWith(" kB", StringComparison.Ordinal)
                && long.TryParse(value[..^3].TrimEnd(), NumberStyles.None, CultureInfo.InvariantCulture, out var kb))
            {
                return kb * 1024;
            }
            return 0;
        }
        return 0;
    }
}
