using System.Text.Json;

namespace SeedApp.Tests;

/// <summary>SeedApp in Production against a real redis-server that wants a password.</summary>
public sealed class ProductionApp : IAsyncLifetime
{
    public const string Password = "prod-test-secret-7f3a";
    public string VisitsKey { get; } = $"seed-app-tests:visits:{Guid.NewGuid():N}";
    public RedisServer Redis { get; private set; } = null!;
    public AppProcess App { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Redis = RedisServer.Start(Password);
        App = AppProcess.Start("Production", new Dictionary<string, string>
        {
            ["Redis__Host"] = "127.0.0.1",
            ["Redis__Port"] = Redis.Port.ToString(),
            ["Redis__Password"] = Password,
            ["Redis__VisitsKey"] = VisitsKey,
        });
        await App.WaitReadyAsync();
    }

    public Task DisposeAsync()
    {
        App?.Dispose();
        Redis?.Dispose();
        return Task.CompletedTask;
    }
}

public sealed class ProductionTests(ProductionApp fixture) : IClassFixture<ProductionApp>
{
    private AppProcess App => fixture.App;

    [Fact]
    public async Task Visits_increment_a_counter_in_redis()
    {
        var first = long.Parse(await App.Client.GetStringAsync("/visits"));
        var second = long.Parse(await App.Client.GetStringAsync("/visits"));
        Assert.Equal(first + 1, second);
        Assert.Equal(second.ToString(), fixture.Redis.Cli("GET", fixture.VisitsKey));
    }

    [Fact]
    public async Task Healthz_is_ok_when_redis_answers()
    {
        Assert.Equal("ok", await App.Client.GetStringAsync("/healthz"));
        await App.WaitForLineAsync(line => line.Contains("Redis connection successful"));
    }

    [Fact]
    public async Task An_unhandled_exception_is_a_500_problem_without_its_text_and_is_logged_once()
    {
        using var response = await App.Client.GetAsync("/boom");
        var body = await response.Content.ReadAsStringAsync();
        var problem = await response.ProblemAsync(500);
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("traceId").GetString()));
        var id = response.RequestId();
        Assert.Equal(id, problem.GetProperty("requestId").GetString());
        Assert.DoesNotContain("Boom", body);
        Assert.DoesNotContain("InvalidOperationException", body);
        Assert.DoesNotContain(" at ", body);

        await App.WaitForLineAsync(line => line.Contains("Boom: /boom always fails"));
        await Task.Delay(500); // a second copy would have been written by now
        var logged = Assert.Single(JsonLines(), e => e.TryGetProperty("Exception", out var ex) && ex.GetString()!.Contains("Boom: /boom always fails"));
        Assert.Single(App.Lines, line => line.Contains("Boom: /boom always fails"));
        Assert.Contains("   at ", logged.GetProperty("Exception").GetString()); // with its stack
        Assert.Equal("Error", logged.GetProperty("LogLevel").GetString());
        Assert.Contains(id, RequestIds(logged));
    }

    [Fact]
    public async Task Json_logs_carry_the_request_id_of_the_response_header()
    {
        using var response = await App.Client.GetAsync("/cpu-bound?n=1000");
        response.EnsureSuccessStatusCode();
        var id = response.RequestId();
        await App.WaitForLineAsync(line => line.Contains("CPU bound End...") && line.Contains(id));
        var start = Assert.Single(JsonLines(), e => e.GetProperty("Message").GetString() == "CPU bound Start..." && RequestIds(e).Contains(id));
        Assert.Equal("Information", start.GetProperty("LogLevel").GetString());
    }

    [Fact]
    public async Task An_incoming_request_id_reaches_the_json_logs()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/io-bound-async?ms=10");
        request.Headers.Add(Http.RequestIdHeader, "prod-req-0001");
        using var response = await App.Client.SendAsync(request);
        Assert.Equal("prod-req-0001", response.RequestId());
        await App.WaitForLineAsync(line => line.Contains("IO bound async End...") && line.Contains("prod-req-0001"));
        Assert.Contains(JsonLines(), e => e.GetProperty("Message").GetString() == "IO bound async Start..." && RequestIds(e).Contains("prod-req-0001"));
    }

    [Fact]
    public async Task Every_output_line_is_json_and_the_password_is_never_written()
    {
        Assert.Equal("Hello from seed-app!", await App.Client.GetStringAsync("/"));
        Assert.NotEmpty(JsonLines());
        Assert.DoesNotContain(App.Lines, line => line.Contains(ProductionApp.Password));
    }

    [Fact]
    public async Task A_bad_query_value_is_a_400_problem()
    {
        using var response = await App.Client.GetAsync("/io-bound?ms=abc");
        var problem = await response.ProblemAsync(400);
        Assert.True(problem.GetProperty("errors").TryGetProperty("ms", out _));
    }

    /// <summary>Every line the app wrote, parsed: a line that is not JSON fails the test.</summary>
    private List<JsonElement> JsonLines() =>
        [.. App.Lines.Where(line => line.Length > 0).Select(line => JsonDocument.Parse(line).RootElement.Clone())];

    private static List<string> RequestIds(JsonElement entry) =>
        [.. entry.GetProperty("Scopes").EnumerateArray()
            .Where(scope => scope.ValueKind == JsonValueKind.Object && scope.TryGetProperty("RequestId", out _))
            .Select(scope => scope.GetProperty("RequestId").GetString()!)];
}
