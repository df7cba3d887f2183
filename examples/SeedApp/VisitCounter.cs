using System.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace SeedApp;

/// <summary>The counter behind <c>/visits</c>: in Redis, or in memory in Development without Redis.</summary>
public interface IVisitCounter
{
    Task<long> IncrementAsync();
    Task<bool> IsHealthyAsync();
}

public static class VisitCounter
{
    /// <summary>The seed's <c>init_redis</c>: connect and PING at start; <see cref="StartupException"/> if that fails.</summary>
    public static IVisitCounter Create(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<RedisOptions>>().Value;
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("SeedApp.Redis");
        if (!options.Enabled)
        {
            logger.LogInformation("Redis:Host is not set: the visit counter lives in memory (Development only; each process counts on its own)");
            return new InMemoryVisitCounter();
        }
        return RedisVisitCounter.Connect(options, logger);
    }
}

public sealed class InMemoryVisitCounter : IVisitCounter
{
    private long _visits;

    public Task<long> IncrementAsync() => Task.FromResult(Interlocked.Increment(ref _visits));
    public Task<bool> IsHealthyAsync() => Task.FromResult(true);
}

public sealed class RedisVisitCounter(IConnectionMultiplexer redis, RedisKey key) : IVisitCounter, IDisposable
{
    public static RedisVisitCounter Connect(RedisOptions options, ILogger logger)
    {
        var where = $"{options.Host}:{options.Port}";
        logger.LogInformation("Connecting to Redis at {Endpoint} (database {Database})...", where, options.Database);
        var config = new ConfigurationOptions
        {
            EndPoints = { { options.Host!, options.Port } },
            Password = options.Password,
            DefaultDatabase = options.Database,
            ConnectTimeout = options.TimeoutMs,
            SyncTimeout = options.TimeoutMs,
            AsyncTimeout = options.TimeoutMs,
            AbortOnConnectFail = true, // fail at start, like the seed's sys.exit(1), instead of retrying forever
            ConnectRetry = 1,
        };
        // The client's connect log says why a connection failed ("Connection refused"); its exception does not.
        var connectLog = new StringWriter();
        ConnectionMultiplexer? redis = null;
        try
        {
            var clock = Stopwatch.StartNew();
            redis = ConnectionMultiplexer.Connect(config, connectLog);
            var rtt = redis.GetDatabase().Ping();
            logger.LogInformation("Redis connection successful: {Endpoint} answered PING in {Ms:F1} ms (connected in {ConnectMs} ms)",
                where, rtt.TotalMilliseconds, clock.ElapsedMilliseconds);
            return new RedisVisitCounter(redis, options.VisitsKey);
        }
        catch (RedisException ex)
        {
            redis?.Dispose();
            var reason = Describe(ex, connectLog.ToString());
            if (!string.IsNullOrEmpty(options.Password))
            {
                reason = reason.Replace(options.Password, "*****", StringComparison.Ordinal);
            }
            throw new StartupException($"Failed to connect to Redis at {where}: {reason}");
        }
    }

    private static string Describe(RedisException ex, string connectLog)
    {
        var text = ex.ToString();
        if (text.Contains("WRONGPASS", StringComparison.Ordinal))
        {
            return "authentication failed: wrong password (Redis:Password, environment variable Redis__Password)";
        }
        if (text.Contains("NOAUTH", StringComparison.Ordinal)
            || ex is RedisConnectionException { FailureType: ConnectionFailureType.AuthenticationFailure })
        {
            return "authentication failed: the server wants a password (set environment variable Redis__Password)";
        }
        // Lines like "00:08:26.4122: > Connection refused" follow each "Connection failed: ..." line.
        var cause = connectLog.Split('\n')
            .Select(line => line.Trim())
            .Select(line => line.IndexOf(": > ", StringComparison.Ordinal) is var at and >= 0 ? line[(at + 4)..] : null)
            .FirstOrDefault(line => !string.IsNullOrEmpty(line));
        var failure = ex is RedisConnectionException rce ? rce.FailureType.ToString() : ex.GetType().Name;
        return cause is null ? $"{failure}: {FirstLine(ex.Message)}" : $"{failure}: {cause}";
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();

    public async Task<long> IncrementAsync() => await redis.GetDatabase().StringIncrementAsync(key);

    public async Task<bool> IsHealthyAsync()
    {
        try
        {
            await redis.GetDatabase().PingAsync();
            return true;
        }
        catch (RedisException)
        {
            return false;
        }
    }

    public void Dispose() => redis.Dispose();
}

/// <summary><c>/healthz</c>: healthy when the visit counter's store answers.</summary>
public sealed class VisitCounterHealthCheck(IVisitCounter counter) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        await counter.IsHealthyAsync() ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("the visit counter's store does not answer");
}

/// <summary>A reason the app cannot start, said in one line (no stack trace): the process exits non-zero.</summary>
public sealed class StartupException(string message) : Exception(message);
