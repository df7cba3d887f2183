using Microsoft.Extensions.Options;

namespace SeedApp;

/// <summary>Common values, the seed's <c>Config</c> base class (<c>PROJECT_NAME</c>).</summary>
public sealed class AppOptions
{
    public const string Section = "App";

    public string ProjectName { get; set; } = "";
}

/// <summary>The seed's <c>REDIS_*</c> values. The password never lives in a file: see README.md.</summary>
public sealed class RedisOptions
{
    public const string Section = "Redis";

    /// <summary>Unset (Development only): the visit counter is kept in memory.</summary>
    public string? Host { get; set; }
    public int Port { get; set; } = 6379;
    public int Database { get; set; }
    public string? Password { get; set; }
    public string VisitsKey { get; set; } = "seed-app:visits";
    /// <summary>Connect and command timeout, the seed's socket_timeout / socket_connect_timeout.</summary>
    public int TimeoutMs { get; set; } = 5000;

    public bool Enabled => !string.IsNullOrWhiteSpace(Host);
}

public sealed class AppOptionsValidator : IValidateOptions<AppOptions>
{
    public ValidateOptionsResult Validate(string? name, AppOptions options) =>
        string.IsNullOrWhiteSpace(options.ProjectName)
            ? ValidateOptionsResult.Fail("App:ProjectName is required")
            : ValidateOptionsResult.Success;
}

/// <summary>Each message names the configuration key, so a bad value stops the app with one clear line.</summary>
public sealed class RedisOptionsValidator(IHostEnvironment environment) : IValidateOptions<RedisOptions>
{
    public ValidateOptionsResult Validate(string? name, RedisOptions options)
    {
        var errors = new List<string>();
        if (!options.Enabled && !environment.IsDevelopment())
        {
            errors.Add($"Redis:Host is required in the {environment.EnvironmentName} environment (only Development may run without Redis)");
        }
        if (options.Port is < 1 or > 65535)
        {
            errors.Add($"Redis:Port must be between 1 and 65535 (got {options.Port})");
        }
        if (options.Database < 0)
        {
            errors.Add($"Redis:Database must be 0 or more (got {options.Database})");
        }
        if (options.TimeoutMs is < 100 or > 60_000)
        {
            errors.Add($"Redis:TimeoutMs must be between 100 and 60000 (got {options.TimeoutMs})");
        }
        if (string.IsNullOrWhiteSpace(options.VisitsKey))
        {
            errors.Add("Redis:VisitsKey must not be empty");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
