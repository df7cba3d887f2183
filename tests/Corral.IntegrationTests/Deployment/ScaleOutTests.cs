using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.IntegrationTests.Deployment;

/// <summary>
/// docs/deployment.md's "second host", for real: two hosts (network namespaces with a veth each),
/// each running corral + SeedApp in Production on its own address; one redis-server and nginx
/// (deploy/nginx/corral.conf with two upstream servers) in the root namespace. Under load, one host
/// dies (SIGKILL to its master and workers): nginx fails over, and every increment answered 2xx is
/// counted in Redis once.
/// </summary>
public sealed class ScaleOutTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(120);
    private const int CorralPort = 8000;
    private const string VisitsKey = "scale-out:visits";

    private readonly TempDir _dir = new();
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        // Processes first (the ones in the namespaces too), then the namespaces and veths.
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            try
            {
                _owned[i].Dispose();
            }
            catch (Exception e)
            {
                output.WriteLine($"cleanup: {e.Message}");
            }
        }
        _dir.Dispose();
    }

    private T Own<T>(T item) where T : IDisposable
    {
        _owned.Add(item);
        return item;
    }

    /// <summary>deploy/nginx/corral.conf with the two hosts as its upstream (docs/deployment.md, step 2).</summary>
    private static string NginxConfig(IReadOnlyList<SimHost> hosts, int port, string wwwroot)
    {
        var text = File.ReadAllText(Path.Combine(TestApps.RepoRoot, "deploy", "nginx", "corral.conf"));
        var servers = string.Join("\n    ", hosts.Select(h => $"server {h.Address}:{CorralPort} max_fails=1 fail_timeout=1s;"));
        foreach (var (from, to) in new[]
        {
            ("server unix:/run/corral/corral.sock fail_timeout=0;", servers),
            ("    listen 80;", $"    listen 127.0.0.1:{port};"),
            ("    listen [::]:80;", ""),
            ("server_name example.com;", "server_name localhost;"),
            ("root /srv/seedapp/wwwroot;", $"root {wwwroot};"),
        })
        {
            Assert.True(text.Contains(from, StringComparison.Ordinal), $"deploy/nginx/corral.conf no longer has '{from}': update the test with the file");
            text = text.Replace(from, to, StringComparison.Ordinal);
        }
        // Which upstream(s) nginx tried, for the test to read: "A:8000" or, after a failover, "A:8000, B:8000".
        var located = new Regex("^        proxy_redirect off;$", RegexOptions.Multiline);
        Assert.Matches(located, text);
        return located.Replace(text, "        proxy_redirect off;\n        add_header X-Upstream $upstream_addr always;", 1);
    }

    private sealed record Answer(double Start, double End, int Status, string Body, string Upstream, string? Error);

    [Fact]
    public async Task NginxFailsOverWhenAHostDiesAndEveryAnsweredVisitIsCountedOnce()
    {
        var (lab, reason) = NetworkLab.TryCreate(2);
        if (lab is null)
        {
            // xunit 2 has no dynamic skip: the test returns, and says why.
            output.WriteLine($"SKIPPED: two test hosts cannot be made on this machine: {reason}");
            return;
        }
        Own(lab);
        var (a, b) = (lab.Hosts[0], lab.Hosts[1]);
        output.WriteLine($"hosts: {a.Namespace} {a.Address} (gateway {a.Gateway}), {b.Namespace} {b.Address} (gateway {b.Gateway})");

        var publish = await SeedAppPublish.GetAsync();
        // One Redis for both hosts, in the root namespace, reachable from each host at its gateway.
        var redis = Own(await RedisServer.StartAsync(_dir.Path, a.Gateway.ToString(), b.Gateway.ToString()));
        var corrals = lab.Hosts.Select(host => Own(CorralProcess.StartWrapped("ip", ["netns", "exec", host.Namespace],
        [
            "-w", "2", "-b", $"{host.Address}:{CorralPort}", "--keep-alive", "75", "--log-level", "debug",
            "--forwarded-allow-ips", host.Gateway.ToString(),
            "-e", "ASPNETCORE_ENVIRONMENT=Production",
            "-e", $"Redis__Host={host.Gateway}", "-e", $"Redis__Port={redis.Port}", "-e", $"Redis__VisitsKey={VisitsKey}",
            // A generous Redis timeout: four workers booting at once on a busy 2-core machine are slow.
            "-e", "Redis__TimeoutMs=30000",
            Path.Combine(publish, "SeedApp.dll"),
        ]))).ToList();
        foreach (var corral in corrals)
        {
            await corral.WaitForWorkersAsync(2, Boot);
        }
        var port = FreePort.Next();
        var nginx = Own(await Nginx.StartAsync(_dir["nginx"], NginxConfig(lab.Hosts, port, Path.Combine(publish, "wwwroot")), port));

        // Load: several clients POST /visits through nginx for 10 s; host A dies at 4 s. No cap on the
        // number of requests: the load must outlast nginx's fail_timeout (1 s) after the kill, so that
        // nginx tries the dead host again and fails over (a fast machine once finished a 20,000 cap
        // at 5 s). POST, because nginx repeats a GET on the next server even after the first one
        // received it (and may have counted it); a POST that reached a host is never repeated.
        const int clients = 6;
        var duration = TimeSpan.FromSeconds(10);
        var killAt = TimeSpan.FromSeconds(4);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        var answers = new List<Answer>();
        var clock = Stopwatch.StartNew();
        var load = Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            await Task.Yield();
            while (clock.Elapsed < duration)
            {
                var start = clock.Elapsed.TotalSeconds;
                Answer answer;
                try
                {
                    using var response = await http.PostAsync("/visits", null);
                    var upstream = response.Headers.TryGetValues("X-Upstream", out var v) ? string.Join(",", v) : "";
                    answer = new Answer(start, clock.Elapsed.TotalSeconds, (int)response.StatusCode, await response.Content.ReadAsStringAsync(), upstream, null);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    answer = new Answer(start, clock.Elapsed.TotalSeconds, 0, "", "", e.Message);
                }
                lock (answers)
                {
                    answers.Add(answer);
                }
            }
        }));

        await Task.Delay(killAt);
        var killedAt = clock.Elapsed.TotalSeconds;
        var victims = new[] { corrals[0].Pid }.Concat(ProcessTree.Descendants(corrals[0].Pid)).ToList();
        foreach (var pid in victims)
        {
            ProcessTree.Kill(pid, ProcessTree.SIGKILL);
        }
        output.WriteLine($"killed host A (master and workers: {string.Join(",", victims)}) at {killedAt:F2} s");
        await load;

        var counter = long.Parse(await redis.CommandAsync($"GET {VisitsKey}") ?? "0", CultureInfo.InvariantCulture);
        var ok = answers.Where(x => x.Status is >= 200 and < 300).ToList();
        var failed = answers.Except(ok).ToList();
        var hostA = $"{a.Address}:{CorralPort}";
        var hostB = $"{b.Address}:{CorralPort}";
        output.WriteLine($"{answers.Count} requests: {ok.Count} answered 2xx, {failed.Count} failed; Redis counter {counter}");
        foreach (var f in failed)
        {
            output.WriteLine($"  failed: {f.Start:F3}-{f.End:F3} s, HTTP {f.Status}, upstream '{f.Upstream}' {f.Error}");
        }
        var failovers = ok.Where(x => x.Upstream.Contains(',', StringComparison.Ordinal)).ToList();
        output.WriteLine($"{failovers.Count} answered after nginx tried the dead host first: {string.Join("; ", failovers.Take(3).Select(x => x.Upstream))}");
        output.WriteLine($"nginx error log:\n{string.Join('\n', File.ReadLines(nginx.ErrorLog).Where(l => l.Contains("upstream", StringComparison.Ordinal)).Take(20))}");

        // Both hosts served before the kill; after it, host B alone, and nginx went on answering.
        var before = ok.Where(x => x.End < killedAt).ToList();
        Assert.Contains(before, x => x.Upstream == hostA);
        Assert.Contains(before, x => x.Upstream == hostB);
        var after = ok.Where(x => x.Start > killedAt + 0.5).ToList();
        Assert.True(after.Count >= 20, $"only {after.Count} requests answered 2xx after host A died");
        Assert.All(after, x => Assert.EndsWith(hostB, x.Upstream, StringComparison.Ordinal));
        // A refused connection to the dead host is retried on the other host, even for a POST.
        Assert.NotEmpty(failovers);
        Assert.All(failovers, x => Assert.Equal($"{hostA}, {hostB}", x.Upstream));

        // Only the requests that were at host A when it died may fail (nginx answers 502: a POST that
        // reached a host is not repeated), and none that started well after.
        Assert.True(failed.Count <= clients, $"{failed.Count} requests failed; at most the {clients} in flight at the kill may");
        Assert.All(failed, f =>
        {
            Assert.Equal(502, f.Status);
            Assert.Equal(hostA, f.Upstream);
            // SIGKILL takes a moment to land: the requests sent just after it still reached host A.
            Assert.True(f.Start <= killedAt + 2, $"a request started at {f.Start:F2} s failed, long after host A was killed at {killedAt:F2} s");
        });

        // Every 2xx is an increment of its own (distinct values), counted in Redis. The counter is
        // above the 2xx count only by increments whose host died before it answered: each is one of
        // the failed requests, never a silent second increment for one answer.
        var values = ok.Select(x => long.Parse(x.Body, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(values.Count, values.Distinct().Count());
        Assert.All(values, v => Assert.InRange(v, 1, counter));
        var unanswered = counter - ok.Count;
        output.WriteLine($"increments without a 2xx answer: {unanswered} (each one a failed request at the dead host)");
        Assert.InRange(unanswered, 0, failed.Count);
        if (failed.Count == 0)
        {
            Assert.Equal(ok.Count, counter);
        }
    }
}
