using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests;

/// <summary>
/// `corral -w 2 App.csproj` in Production: the project is published (static web assets included) into a
/// folder outside its source tree, and HUP publishes it again, as Gunicorn's HUP loads the new code.
/// Apps fresh from `dotnet new mvc`, `razor` and `blazor`, given to corral as projects.
/// </summary>
public sealed partial class PublishedProjectTests
{
    private static readonly Dictionary<string, string> Production = new() { ["ASPNETCORE_ENVIRONMENT"] = "Production", ["DOTNET_ENVIRONMENT"] = "Production" };

    private static readonly HttpClient s_client = new(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None, PooledConnectionLifetime = TimeSpan.Zero })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };

    [Theory]
    [InlineData("mvc", 19400)]
    [InlineData("razor", 19401)]
    [InlineData("blazor", 19402)]
    public async Task ATemplateProjectServesEveryStaticAssetItsHomePageLinks(string template, int port)
    {
        var project = await TemplateProjects.SharedAsync(template);
        using var corral = CorralProcess.Start(["-w", "2", "-b", $"127.0.0.1:{port}", "--log-level", "debug", project], Production);
        await corral.WaitForWorkersAsync(2, TimeSpan.FromMinutes(5)); // the publish first
        var snapshot = await PublishedFolderAsync(corral, 1);
        Assert.False(IsUnder(snapshot, Path.GetDirectoryName(project)!), $"the published folder {snapshot} is under the project's folder");

        var (status, home) = await GetAsync(port, "/");
        Assert.Equal(200, status);
        var assets = LinkedAssets(home);
        // The templates link fingerprinted names (site.b9sayid5wm.css) through the static assets manifest.
        Assert.Contains(assets, a => Regex.IsMatch(a, @"^/(css/site|app)(\.\w+)?\.css(\?.*)?$"));
        Assert.Contains(assets, a => Regex.IsMatch(a, @"^/lib/bootstrap/dist/css/bootstrap\.min(\.\w+)?\.css(\?.*)?$"));
        if (template == "blazor")
        {
            Assert.Contains(assets, a => Regex.IsMatch(a, @"^/_framework/blazor\.web(\.\w+)?\.js(\?.*)?$"));
        }
        await AssertServedAsPublishedAsync(port, snapshot, project, assets);
    }

    [Fact]
    public async Task HupPublishesTheEditedSourceAndABrokenBuildKeepsTheOldWorkers()
    {
        const int port = 19410;
        var project = await TemplateProjects.NewAsync("mvc", "PubHup");
        var index = Path.Combine(Path.GetDirectoryName(project)!, "Views", "Home", "Index.cshtml");
        using var corral = CorralProcess.Start(["-w", "2", "-b", $"127.0.0.1:{port}", "--log-level", "debug", project], Production);

        // The first build says what it does while it runs, and how long it took.
        await corral.WaitForLineAsync(@"Publishing .*PubHup\.csproj \(Release\) to ", TimeSpan.FromSeconds(30));
        await corral.WaitForLineAsync(@"\[INFO\]   (Determining projects to restore|Restored |All projects are up-to-date)", TimeSpan.FromMinutes(3));
        await corral.WaitForLineAsync(@"\[INFO\]   PubHup -> ", TimeSpan.FromMinutes(5));
        await corral.WaitForLineAsync(@"Published PubHup\.csproj in \d+\.\d s", TimeSpan.FromMinutes(5));
        var oldWorkers = await corral.WaitForWorkersAsync(2, TimeSpan.FromMinutes(2));
        var first = await PublishedFolderAsync(corral, 1);
        Assert.Contains("Welcome", (await GetAsync(port, "/")).Body, StringComparison.Ordinal);

        // An edit, then HUP: the old workers serve while it builds (and the loop still handles signals), then the new ones serve the edit.
        await File.WriteAllTextAsync(index, (await File.ReadAllTextAsync(index)).Replace("Welcome", "Welcome back", StringComparison.Ordinal));
        await using (var loop = new Http.Loop(port))
        {
            corral.Signal(1);
            await corral.WaitForLineAsync(@"Publishing .*PubHup\.csproj \(Release\) to ", TimeSpan.FromSeconds(30), occurrence: 2);
            corral.Signal(21); // TTIN, during the build
            await corral.WaitForLineAsync("Handling signal: ttin", TimeSpan.FromSeconds(10));
            Assert.Equal(1, corral.CountLines(@"Published PubHup\.csproj in")); // the build still runs: the loop did not wait for it
            await WaitForAsync(async () => (await GetAsync(port, "/")).Body.Contains("Welcome back", StringComparison.Ordinal), TimeSpan.FromMinutes(5), corral, "the edited page");
            await Task.Delay(500);
            Assert.Empty(loop.Failures);
        }
        var second = await PublishedFolderAsync(corral, 2);
        Assert.NotEqual(first, second);
        Assert.False(IsUnder(second, Path.GetDirectoryName(project)!));
        // The old build goes once its workers are gone.
        await WaitForAsync(() => Task.FromResult(!Directory.Exists(first)), TimeSpan.FromMinutes(2), corral, $"{first} removed");
        Assert.True(Directory.Exists(second));
        var newWorkers = await corral.WaitForWorkersAsync(3, TimeSpan.FromMinutes(2));
        Assert.Empty(newWorkers.Intersect(oldWorkers));
        var home = (await GetAsync(port, "/")).Body;
        await AssertServedAsPublishedAsync(port, second, project, LinkedAssets(home));

        // A broken build: the compiler's error (file:line) and a refusal, the master and its workers stay.
        await File.WriteAllTextAsync(index, (await File.ReadAllTextAsync(index)).Replace("Welcome back", "@{ int broken = \"text\"; }Welcome back", StringComparison.Ordinal));
        corral.Signal(1);
        await corral.WaitForLineAsync(@"Index\.cshtml\(\d+,\d+\): error CS\d+", TimeSpan.FromMinutes(5));
        await corral.WaitForLineAsync(@"Reload refused: the build of .*PubHup\.csproj failed .*; the old workers keep serving", TimeSpan.FromSeconds(30));
        Assert.False(corral.HasExited);
        Assert.Contains("Welcome back", (await GetAsync(port, "/")).Body, StringComparison.Ordinal);
        Assert.Equal(newWorkers, await corral.WaitForWorkersAsync(3, TimeSpan.FromSeconds(10)));
        Assert.False(Directory.Exists(await PublishedFolderAsync(corral, 3))); // the failed build's folder is gone
        Assert.True(Directory.Exists(second));
    }

    /// <summary>A HUP during the first publish does not end corral (the default action): it publishes again once it serves.</summary>
    [Fact]
    public async Task AHupDuringTheFirstPublishIsHandledOnceCorralServes()
    {
        const int port = 19411;
        var project = await TemplateProjects.SharedAsync("razor");
        using var corral = CorralProcess.Start(["-w", "1", "-b", $"127.0.0.1:{port}", "--log-level", "debug", project], Production);
        await corral.WaitForLineAsync(@"Publishing .*PubRazor\.csproj \(Release\) to ", TimeSpan.FromSeconds(30));
        corral.Signal(1);
        await corral.WaitForLineAsync("HUP while corral starts: handled once it serves", TimeSpan.FromSeconds(10));
        var first = int.Parse((await corral.WaitForLineAsync(@"Booting worker with pid: (\d+)", TimeSpan.FromMinutes(5))).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        // Once it serves: the HUP, a second publish, and a new worker in place of the first.
        await corral.WaitForLineAsync("Handling signal: hup", TimeSpan.FromSeconds(30));
        await corral.WaitForLineAsync(@"Published PubRazor\.csproj in", TimeSpan.FromMinutes(5), occurrence: 2);
        var second = await corral.WaitForWorkersAsync(1, TimeSpan.FromMinutes(2), gone: [first]);
        Assert.Equal(200, (await GetAsync(port, "/")).Status);
        Assert.False(corral.HasExited);
        Assert.DoesNotContain(first, second);
    }

    /// <summary>Each asset answers 200 with the bytes of the published file (its uncompressed variant).</summary>
    private static async Task AssertServedAsPublishedAsync(int port, string snapshot, string project, IReadOnlyList<string> assets)
    {
        var files = PublishedFiles(snapshot, Path.GetFileNameWithoutExtension(project));
        Assert.NotEmpty(assets);
        foreach (var asset in assets)
        {
            using var response = await s_client.GetAsync($"http://127.0.0.1:{port}{asset}");
            var body = await response.Content.ReadAsByteArrayAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{asset}: {(int)response.StatusCode}");
            Assert.True(body.Length > 0, $"{asset}: an empty body (Content-Length: {response.Content.Headers.ContentLength})");
            var route = asset.Split('?')[0].TrimStart('/');
            Assert.True(files.TryGetValue(route, out var file), $"{asset}: not among the published static assets");
            Assert.Equal(new FileInfo(Path.Combine(snapshot, "wwwroot", file)).Length, body.Length);
        }
    }

    /// <summary>Route to file (under wwwroot) of the published app's uncompressed static assets, from its endpoints manifest.</summary>
    private static Dictionary<string, string> PublishedFiles(string snapshot, string name)
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(snapshot, name + ".staticwebassets.endpoints.json")));
        var files = new Dictionary<string, string>();
        foreach (var e in manifest.RootElement.GetProperty("Endpoints").EnumerateArray())
        {
            if (e.GetProperty("Selectors").GetArrayLength() == 0)
            {
                files[e.GetProperty("Route").GetString()!] = e.GetProperty("AssetFile").GetString()!;
            }
        }
        return files;
    }

    /// <summary>The local URLs of a page's stylesheets, icons and scripts (its link href and script src), as absolute paths.</summary>
    internal static List<string> LinkedAssets(string html) =>
        [.. AssetReference().Matches(html).Select(m => WebUtility.HtmlDecode(m.Groups[2].Value))
            .Where(u => u.Length > 0 && !u.Contains("://", StringComparison.Ordinal) && !u.StartsWith("//", StringComparison.Ordinal)
                && !u.StartsWith("data:", StringComparison.Ordinal) && !u.StartsWith('#'))
            .Select(u => "/" + u.TrimStart('~').TrimStart('/'))
            .Distinct()];

    [GeneratedRegex(@"<(link|script)\b[^>]*?\b(?:href|src)\s*=\s*""([^""]*)""", RegexOptions.IgnoreCase)]
    private static partial Regex AssetReference();

    /// <summary>The folder build number <paramref name="n"/> was published to ("Publishing ... to DIR").</summary>
    private static async Task<string> PublishedFolderAsync(CorralProcess corral, int n) =>
        (await corral.WaitForLineAsync(@"Publishing .* \(Release\) to (\S+)$", TimeSpan.FromSeconds(10), occurrence: n)).Groups[1].Value;

    private static bool IsUnder(string path, string dir) =>
        Path.GetFullPath(path).StartsWith(Path.GetFullPath(dir).TrimEnd('/') + "/", StringComparison.Ordinal);

    private static async Task<(int Status, string Body)> GetAsync(int port, string path)
    {
        using var response = await s_client.GetAsync($"http://127.0.0.1:{port}{path}");
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, TimeSpan timeout, CorralProcess corral, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what}: not within {timeout.TotalSeconds} s. Output:\n{corral.Output}");
            }
            await Task.Delay(250);
        }
    }
}
