using System.Diagnostics;

namespace SeedApp.Tests;

/// <summary>Bad settings or an unusable Redis stop the app at start: one clear line, non-zero exit.</summary>
public sealed class StartupFailureTests
{
    private const string Secret = "never-print-me-91c2";

    [Fact]
    public async Task Production_without_a_reachable_redis_exits_fast_with_one_line()
    {
        var port = FreePort.Next(); // nothing listens there
        var clock = Stopwatch.StartNew();
        using var app = AppProcess.Start("Production", new Dictionary<string, string>
        {
            ["Redis__Host"] = "127.0.0.1",
            ["Redis__Port"] = port.ToString(),
            ["Redis__Password"] = Secret,
        });
        var exitCode = await app.WaitForExitAsync(TimeSpan.FromSeconds(15));
        Assert.NotEqual(0, exitCode);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
        var line = OneFailureLine(app);
        Assert.Contains($"127.0.0.1:{port}", line);
        Assert.Contains("Connection refused", line);
    }

    [Fact]
    public async Task A_wrong_redis_password_says_authentication_failed()
    {
        using var redis = RedisServer.Start(password: "the-right-one-55aa");
        using var app = AppProcess.Start("Production", new Dictionary<string, string>
        {
            ["Redis__Host"] = "127.0.0.1",
            ["Redis__Port"] = redis.Port.ToString(),
            ["Redis__Password"] = Secret,
        });
        Assert.NotEqual(0, await app.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        var line = OneFailureLine(app);
        Assert.Contains("authentication failed", line);
        Assert.Contains($"127.0.0.1:{redis.Port}", line);
        Assert.DoesNotContain("the-right-one-55aa", app.Output);
    }

    [Fact]
    public async Task A_missing_redis_password_says_authentication_failed()
    {
        using var redis = RedisServer.Start(password: "the-right-one-55aa");
        using var app = AppProcess.Start("Production", new Dictionary<string, string>
        {
            ["Redis__Host"] = "127.0.0.1",
            ["Redis__Port"] = redis.Port.ToString(),
        });
        Assert.NotEqual(0, await app.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.Contains("authentication failed", OneFailureLine(app));
    }

    [Theory]
    [InlineData("Redis__Port", "abc", "'Redis:Port'")]
    [InlineData("Redis__Port", "99999", "Redis:Port must be between 1 and 65535")]
    [InlineData("Redis__Port", "0", "Redis:Port must be between 1 and 65535")]
    [InlineData("Redis__Host", "", "Redis:Host is required")]
    [InlineData("Redis__TimeoutMs", "-5", "Redis:TimeoutMs must be between")]
    [InlineData("Redis__Database", "x", "'Redis:Database'")]
    [InlineData("App__ProjectName", "", "App:ProjectName is required")]
    public async Task A_malformed_setting_stops_the_app_with_one_line_naming_the_key(string variable, string value, string expected)
    {
        using var app = AppProcess.Start("Production", new Dictionary<string, string>
        {
            ["Redis__Host"] = "127.0.0.1",
            ["Redis__Port"] = FreePort.Next().ToString(),
            ["Redis__Password"] = Secret,
            [variable] = value,
        });
        Assert.NotEqual(0, await app.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.Contains(expected, OneFailureLine(app));
        Assert.DoesNotContain(app.Lines, line => line.Contains("Connecting to Redis")); // stopped before connecting
    }

    /// <summary>Exactly one line says why; no stack trace and no password anywhere in the output.</summary>
    private static string OneFailureLine(AppProcess app)
    {
        var line = Assert.Single(app.Lines, l => l.Contains("Cannot start"));
        Assert.DoesNotContain("   at ", app.Output);
        Assert.DoesNotContain(Secret, app.Output);
        return line;
    }
}
