using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Corral.IntegrationTests;

/// <summary>
/// A Blazor Server circuit across workers, in a real browser: the app fresh from `dotnet new blazor`
/// (its Counter page is interactive on the server), given to corral as a project, under -w 2 with the
/// kernel's accept policy, so the page's negotiate and its websocket (a new TCP connection) often
/// reach different workers. Every page must get its circuit over a websocket (not the long-polling
/// fallback Blazor takes when the websocket fails) and every click must count.
/// </summary>
public sealed partial class BlazorServerTests(ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium";
    private const int Pages = 8;
    private const int Clicks = 5;

    [Fact]
    public async Task EveryBrowserGetsAWorkingCircuitOverAWebsocketUnderTwoWorkersAndTheKernelPolicy()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: apt-get install chromium (.ci/run does)");
        var project = await TemplateProjects.SharedAsync("blazor");
        const int port = 19420;
        using var corral = CorralProcess.Start(
            ["-w", "2", "-b", $"127.0.0.1:{port}", "--accept-policy", "kernel", "--log-level", "debug",
             "--access-logfile", "-", "--access-logformat", "%(p)s %(m)s %(U)s %(s)s", project],
            new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production" });
        var workers = await corral.WaitForWorkersAsync(2, TimeSpan.FromMinutes(5)); // the publish first

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        });
        var problems = new ConcurrentQueue<string>();
        var pages = await Task.WhenAll(Enumerable.Range(0, Pages).Select(i => BlazorPage.OpenAsync(browser, port, i, problems)));
        try
        {
            var counts = await Task.WhenAll(pages.Select(p => p.ClickAsync()));
            Assert.True(problems.IsEmpty, string.Join("\n", problems) + "\nOutput:\n" + corral.Output);
            Assert.All(counts, c => Assert.Equal(Clicks, c));
            // Which worker issued each circuit's token (it logged the negotiate). Over a run both
            // workers take circuits; not asserted: the kernel decides.
            var owners = NegotiateLine().Matches(corral.Output).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(Pages, owners.Count);
            Assert.All(owners, o => Assert.Contains(o, workers));
            output.WriteLine($"negotiated by: {string.Join(", ", owners.GroupBy(o => o).Select(g => $"{g.Key} x{g.Count()}"))}");

            // A reload: the circuits close cleanly (1000), their state is gone with the old workers, and
            // Blazor's reconnect, turned down by the new workers, reloads each page: a new circuit works.
            foreach (var page in pages)
            {
                page.Phase = " after HUP";
            }
            corral.Signal(ProcessTree.SIGHUP);
            await corral.WaitForWorkersAsync(2, TimeSpan.FromMinutes(5), gone: workers); // a republish first
            counts = await Task.WhenAll(pages.Select(p => p.ClickAsync()));
            output.WriteLine(string.Join("\n", problems));
            Assert.All(counts, c => Assert.Equal(Clicks, c));
            Assert.DoesNotContain(problems, p => p.Contains("Long Polling", StringComparison.OrdinalIgnoreCase) || p.Contains("no circuit", StringComparison.Ordinal));
        }
        finally
        {
            foreach (var page in pages)
            {
                await page.DisposeAsync();
            }
        }
    }

    /// <summary>/counter in a browser context of its own (its own connections): its websockets and what went wrong.</summary>
    private sealed class BlazorPage(IBrowserContext context, IPage page, int index, ConcurrentQueue<string> problems) : IAsyncDisposable
    {
        private readonly ConcurrentQueue<IWebSocket> _sockets = new();

        /// <summary>Before the HUP, a console error or warning is a problem; after it, Blazor's reconnect logs some.</summary>
        public string Phase { get; set; } = "";

        public static async Task<BlazorPage> OpenAsync(IBrowser browser, int port, int index, ConcurrentQueue<string> problems)
        {
            var context = await browser.NewContextAsync();
            var page = await context.NewPageAsync();
            var blazor = new BlazorPage(context, page, index, problems);
            page.WebSocket += (_, ws) => blazor._sockets.Enqueue(ws);
            page.PageError += (_, e) => problems.Enqueue($"page {index}{blazor.Phase}: {e}");
            page.Console += (_, m) =>
            {
                if ((blazor.Phase.Length == 0 && m.Type is "error" or "warning") || m.Text.Contains("Long Polling", StringComparison.OrdinalIgnoreCase))
                {
                    problems.Enqueue($"page {index}{blazor.Phase}: console {m.Type}: {m.Text}");
                }
            };
            await page.GotoAsync($"http://127.0.0.1:{port}/counter");
            return blazor;
        }

        /// <summary>
        /// Waits for a live circuit (a click counts; the prerendered page, or a page whose circuit is
        /// gone, ignores clicks), then clicks <see cref="Clicks"/> times: how many of those counted.
        /// </summary>
        public async Task<int> ClickAsync()
        {
            var status = page.GetByRole(AriaRole.Status);
            var button = page.GetByRole(AriaRole.Button, new() { Name = "Click me" });
            var before = await CountAsync(status);
            var started = DateTime.UtcNow;
            int count;
            while ((count = await CountAsync(status)) == before || count == 0)
            {
                if (DateTime.UtcNow - started > TimeSpan.FromSeconds(45))
                {
                    problems.Enqueue($"page {index}{Phase}: no circuit after 45 s (websockets: {string.Join(", ", _sockets.Select(Describe))})");
                    return -1;
                }
                try
                {
                    await button.ClickAsync(new() { Timeout = 5_000 });
                }
                catch (Exception e) when (e is PlaywrightException or TimeoutException)
                {
                    // the page is reloading
                }
                await Task.Delay(300);
            }
            for (var i = 1; i <= Clicks; i++)
            {
                await button.ClickAsync();
                await Assertions.Expect(status).ToHaveTextAsync($"Current count: {count + i}", new() { Timeout = 10_000 });
            }
            var last = _sockets.LastOrDefault(s => s.Url.Contains("/_blazor", StringComparison.Ordinal));
            if (last is null || last.IsClosed)
            {
                problems.Enqueue($"page {index}{Phase}: the circuit is not on an open websocket: {string.Join(", ", _sockets.Select(Describe))}");
            }
            return await CountAsync(status) - count;
        }

        private static string Describe(IWebSocket ws) => ws.Url + (ws.IsClosed ? " (closed)" : "");

        public async ValueTask DisposeAsync() => await context.DisposeAsync();
    }

    private static async Task<int> CountAsync(ILocator status)
    {
        var m = Regex.Match(await status.TextContentAsync() ?? "", @"Current count: (\d+)");
        return m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    [GeneratedRegex(@"<(\d+)> POST /_blazor/negotiate 200")]
    private static partial Regex NegotiateLine();
}
