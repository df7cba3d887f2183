using Corral.IntegrationTests.Infrastructure;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Corral.IntegrationTests.Observability;

/// <summary>
/// The status page in a real browser: Debian's chromium, headless, driven by Playwright for .NET
/// (which never downloads a browser of its own here: it is pointed at /usr/bin/chromium).
/// </summary>
public sealed class StatusPageTests(ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task StatusPageRendersTheWorkerTableInChromium()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: apt-get install chromium (.ci/run does)");
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", "--spare-workers", "1", "-b", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var metrics = await Observe.MetricsPortAsync(corral);
        // Two serving workers and a spare (--spare-workers 1): three children, each ready.
        var workers = await corral.WaitForWorkersAsync(3, TimeSpan.FromSeconds(60));
        var spare = int.Parse((await corral.WaitForLineAsync(@"Booting spare worker with pid: (\d+)", TimeSpan.FromSeconds(1))).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        for (var i = 0; i < 10; i++)
        {
            await Http.GetAsync(port, "/");
        }

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 900, Height = 420 } });
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync($"http://127.0.0.1:{metrics}/");

        // The table fills from /status.json; the rate needs two refreshes.
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#rows tr').length === 3 && document.getElementById('rate').textContent !== '-'",
            null, new PageWaitForFunctionOptions { Timeout = 20000 });
        var pids = await page.EvalOnSelectorAllAsync<int[]>("#rows tr", "rows => rows.map(r => Number(r.dataset.pid))");
        Assert.Equal(workers.Order(), pids.Order());
        var states = await page.EvalOnSelectorAllAsync<string[]>("#rows tr", "rows => rows.map(r => r.dataset.pid + ' ' + r.cells[1].textContent)");
        Assert.Equal(workers.Order().Select(w => $"{w} {(w == spare ? "spare" : "ready")}"), states.OrderBy(x => int.Parse(x.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)));
        // The spare is not counted as serving, as `corral ctl status` says it.
        Assert.Equal("2 ready / 2 wanted + 1 spare", await page.TextContentAsync("#workers"));
        Assert.Equal("10", await page.TextContentAsync("#total"));
        // RSS, PSS and GC heap columns, each worker's in MiB.
        var headers = await page.EvalOnSelectorAllAsync<string[]>("#table th", "cells => cells.map(c => c.textContent)");
        Assert.Equal(["RSS", "PSS", "GC heap"], headers[^3..]);
        await page.WaitForFunctionAsync("() => [...document.querySelectorAll('#rows tr td:nth-child(9)')].every(c => c.textContent.endsWith(' MiB'))",
            null, new PageWaitForFunctionOptions { Timeout = 10000 });
        var pssCells = await page.EvalOnSelectorAllAsync<string[]>("#rows tr td:nth-child(9)", "cells => cells.map(c => c.textContent)");
        Assert.All(pssCells, c => Assert.Matches(@"^\d+\.\d MiB$", c));
        // What each worker's boot cost in CPU, next to how long it took.
        Assert.Equal(["boot", "boot CPU"], headers[3..5]);
        var bootCpu = await page.EvalOnSelectorAllAsync<string[]>("#rows tr td:nth-child(5)", "cells => cells.map(c => c.textContent)");
        Assert.All(bootCpu, c =>
        {
            Assert.Matches(@"^\d+ ms$", c);
            Assert.InRange(int.Parse(c.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture), 10, 30_000);
        });
        Assert.Empty(errors);

        var dir = Path.Combine(AppContext.BaseDirectory, "TestResults");
        Directory.CreateDirectory(dir);
        var shot = Path.Combine(dir, "status-page.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true });
        Assert.True(new FileInfo(shot).Length > 1000);
        output.WriteLine($"screenshot: {shot}");
    }
}
