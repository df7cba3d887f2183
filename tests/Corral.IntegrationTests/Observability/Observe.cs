using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests.Observability;

/// <summary>Helpers of the observability tests: scraping and parsing /metrics, running `corral ctl`.</summary>
public static partial class Observe
{
    private static readonly HttpClient s_client = new() { Timeout = TimeSpan.FromSeconds(20) };

    /// <summary>The metrics port, from the master's "Metrics at: http://HOST:PORT/metrics" line.</summary>
    public static async Task<int> MetricsPortAsync(CorralProcess corral)
    {
        var m = await corral.WaitForLineAsync(@"Metrics at: http://[^ ]+:(\d+)/metrics", TimeSpan.FromSeconds(30));
        return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    /// <summary>GET /metrics with a real HTTP client, parsed as the Prometheus text format (samples only).</summary>
    public static async Task<IReadOnlyList<Sample>> ScrapeAsync(int port)
    {
        using var response = await s_client.GetAsync($"http://127.0.0.1:{port}/metrics");
        response.EnsureSuccessStatusCode();
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
        return Parse(await response.Content.ReadAsStringAsync());
    }

    public static IReadOnlyList<Sample> Parse(string text)
    {
        var samples = new List<Sample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            var m = SampleLine().Match(line);
            Assert.True(m.Success, $"not a Prometheus sample line: {line}");
            var labels = new Dictionary<string, string>();
            foreach (Match l in LabelPair().Matches(m.Groups["labels"].Value))
            {
                labels[l.Groups[1].Value] = l.Groups[2].Value;
            }
            samples.Add(new Sample(m.Groups["name"].Value, labels, double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture)));
        }
        return samples;
    }

    public static double Sum(this IReadOnlyList<Sample> samples, string name, Func<IReadOnlyDictionary<string, string>, bool>? where = null) =>
        samples.Where(s => s.Name == name && (where is null || where(s.Labels))).Sum(s => s.Value);

    /// <summary>Scrapes until <paramref name="condition"/> holds; returns the last scrape.</summary>
    public static async Task<IReadOnlyList<Sample>> ScrapeUntilAsync(int port, Func<IReadOnlyList<Sample>, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var samples = await ScrapeAsync(port);
            if (condition(samples))
            {
                return samples;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"within {timeout.TotalSeconds} s: {what}. Last scrape:\n{string.Join('\n', samples.Where(s => !s.Name.EndsWith("_bucket", StringComparison.Ordinal)).Select(s => $"{s.Name}{{{string.Join(',', s.Labels.Select(l => l.Key + "=" + l.Value))}}} {s.Value}"))}");
            }
            await Task.Delay(200);
        }
    }

    /// <summary>Runs `corral ctl ARGS` (the same corral.dll the master runs).</summary>
    public static async Task<(int Exit, string Out, string Err)> CtlAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(TestApps.CorralDll);
        psi.ArgumentList.Add("ctl");
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>[^ ]+)( \d+)?$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""")]
    private static partial Regex LabelPair();
}
