using System.Text.RegularExpressions;

namespace SeedApp.Tests;

/// <summary>SeedApp in Development with no Redis configured: runs with nothing installed.</summary>
public sealed class DevelopmentApp : IAsyncLifetime
{
    public AppProcess App { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        // Redis__Host empty: no Redis even if a developer's user secrets name one.
        App = AppProcess.Start("Development", new Dictionary<string, string> { ["Redis__Host"] = "" });
        await App.WaitReadyAsync();
    }

    public Task DisposeAsync()
    {
        App.Dispose();
        return Task.CompletedTask;
    }
}

public sealed partial class DevelopmentTests(DevelopmentApp fixture) : IClassFixture<DevelopmentApp>
{
    private AppProcess App => fixture.App;

    [Fact]
    public async Task Root_says_hello_with_the_project_name()
    {
        Assert.Equal("Hello from seed-app!", await App.Client.GetStringAsync("/"));
    }

    [Fact]
    public async Task Cpu_bound_reports_its_cost_and_logs_start_and_end_with_the_request_id()
    {
        using var response = await App.Client.GetAsync("/cpu-bound?n=2000");
        response.EnsureSuccessStatusCode();
        Assert.Matches(CostBody("CPU"), await response.Content.ReadAsStringAsync());
        var id = response.RequestId();
        await App.WaitForLineAsync(line => line.Contains("CPU bound Start...") && line.Contains($"RequestId:{id}"));
        await App.WaitForLineAsync(line => line.Contains("CPU bound End...") && line.Contains($"RequestId:{id}"));
    }

    [Theory]
    [InlineData("/io-bound")]
    [InlineData("/io-bound-async")]
    public async Task Io_bound_waits_the_asked_time(string path)
    {
        var body = await App.Client.GetStringAsync($"{path}?ms=300");
        var match = CostBody("IO").Match(body);
        Assert.True(match.Success, body);
        Assert.InRange(int.Parse(match.Groups["ms"].Value), 290, 5000);
    }

    [Theory]
    [InlineData("/io-bound?ms=abc", "ms")]
    [InlineData("/io-bound?ms=-1", "ms")]
    [InlineData("/io-bound-async?ms=999999999", "ms")]
    [InlineData("/io-bound-async?ms=99999999999999999999", "ms")]
    [InlineData("/cpu-bound?n=0", "n")]
    [InlineData("/cpu-bound?n=1e3", "n")]
    [InlineData("/cpu-bound?n=100000000", "n")]
    public async Task A_bad_query_value_is_a_400_problem_naming_the_parameter(string url, string parameter)
    {
        using var response = await App.Client.GetAsync(url);
        var problem = await response.ProblemAsync(400);
        Assert.True(problem.GetProperty("errors").TryGetProperty(parameter, out _), problem.ToString());
        Assert.Contains($"'{parameter}'", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Visits_count_in_memory_without_redis()
    {
        var first = long.Parse(await App.Client.GetStringAsync("/visits"));
        var second = long.Parse(await App.Client.GetStringAsync("/visits"));
        Assert.Equal(first + 1, second);
        Assert.Single(App.Lines, line => line.Contains("the visit counter lives in memory"));
    }

    [Fact]
    public async Task Healthz_is_ok()
    {
        using var response = await App.Client.GetAsync("/healthz");
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Boom_shows_the_developer_exception_details()
    {
        using var response = await App.Client.GetAsync("/boom");
        Assert.Equal(500, (int)response.StatusCode);
        Assert.Contains("Boom: /boom always fails", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_sane_incoming_request_id_is_kept_and_logged()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/cpu-bound?n=10");
        request.Headers.Add(Http.RequestIdHeader, "dev-test-42");
        using var response = await App.Client.SendAsync(request);
        Assert.Equal("dev-test-42", response.RequestId());
        await App.WaitForLineAsync(line => line.Contains("CPU bound Start...") && line.Contains("RequestId:dev-test-42"));
    }

    [Fact]
    public async Task An_insane_incoming_request_id_is_replaced()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.TryAddWithoutValidation(Http.RequestIdHeader, "bad id <script>");
        using var response = await App.Client.SendAsync(request);
        var id = response.RequestId();
        Assert.NotEqual("bad id <script>", id);
        Assert.False(string.IsNullOrWhiteSpace(id));
    }

    [Fact]
    public async Task Unknown_paths_are_404_problems()
    {
        using var response = await App.Client.GetAsync("/no-such-page");
        await response.ProblemAsync(404);
    }

    private static Regex CostBody(string kind) => new($"^{kind} Bound Task Completed cost (?<ms>\\d+) ms$");
}
