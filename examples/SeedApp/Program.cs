using System.Diagnostics;
using System.Numerics;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using SeedApp;

// The seed's Flask app (app.py + web_config.py + db.py), as an ordinary ASP.NET Core app.
var builder = WebApplication.CreateBuilder(args);

// Logging: JSON lines in Production, plain text in Development; scopes carry the request id.
builder.Logging.ClearProviders();
if (builder.Environment.IsDevelopment())
{
    builder.Logging.AddSimpleConsole(o =>
    {
        o.IncludeScopes = true;
        o.SingleLine = true;
        o.TimestampFormat = "HH:mm:ss.fff ";
    });
}
else
{
    builder.Logging.AddJsonConsole(o =>
    {
        o.IncludeScopes = true;
        o.UseUtcTimestamp = true;
        o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        o.JsonWriterOptions = new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    });
}

// Configuration, the seed's Config classes: appsettings.json, appsettings.{ASPNETCORE_ENVIRONMENT}.json,
// user secrets (Development), environment variables (Redis__Password), command line.
builder.Services.AddOptions<AppOptions>().BindConfiguration(AppOptions.Section).ValidateOnStart();
builder.Services.AddOptions<RedisOptions>().BindConfiguration(RedisOptions.Section).ValidateOnStart();
builder.Services.AddSingleton<IValidateOptions<AppOptions>, AppOptionsValidator>();
builder.Services.AddSingleton<IValidateOptions<RedisOptions>, RedisOptionsValidator>();

builder.Services.AddSingleton(VisitCounter.Create);
builder.Services.AddHealthChecks().AddCheck<VisitCounterHealthCheck>("visits");

// Errors as RFC 9457 problem+json; requestId matches the X-Request-Id header and the logs.
builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = c =>
    c.ProblemDetails.Extensions["requestId"] = c.HttpContext.TraceIdentifier);

var app = builder.Build();

// The seed's init_redis at start: a bad setting or an unreachable Redis stops the app here,
// before it listens, with one line and a non-zero exit code (the seed's sys.exit(1)).
try
{
    _ = app.Services.GetRequiredService<IOptions<AppOptions>>().Value;
    _ = app.Services.GetRequiredService<IVisitCounter>();
}
catch (Exception ex) when (ex is StartupException or OptionsValidationException or InvalidOperationException)
{
    app.Logger.LogCritical("Cannot start: {Reason}", ex.Message);
    await app.DisposeAsync(); // flushes the log
    return 1;
}

app.UseMiddleware<RequestIdMiddleware>();
if (app.Environment.IsDevelopment())
{
    app.UseDeveloperExceptionPage();
}
else
{
    app.UseExceptionHandler(); // logs the exception once, answers a problem+json 500 without its text
}
app.UseStatusCodePages(); // bodyless 4xx/5xx become problem+json too

app.MapGet("/", (IOptions<AppOptions> options) => $"Hello from {options.Value.ProjectName}!");

// CPU-bound: the seed computes the factorial of 10**5 with Python's big integers. Exact n! here too;
// the default n keeps the numbers small enough to stay off the large object heap.
app.MapGet("/cpu-bound", (HttpRequest request, ILogger<Program> logger) =>
{
    if (!Query.TryGetInt(request, "n", 40_000, 1, 100_000, out var n, out var problem))
    {
        return problem;
    }
    logger.LogInformation("CPU bound Start...");
    var clock = Stopwatch.StartNew();
    var result = BigInteger.One;
    for (var i = 2; i <= n; i++)
    {
        result *= i;
    }
    logger.LogInformation("CPU bound End...");
    return Results.Text($"CPU Bound Task Completed cost {clock.ElapsedMilliseconds} ms");
});

// IO-bound: the seed's time.sleep(5) blocks the thread, as here.
app.MapGet("/io-bound", (HttpRequest request, ILogger<Program> logger) =>
{
    if (!Query.TryGetInt(request, "ms", 5_000, 0, 60_000, out var ms, out var problem))
    {
        return problem;
    }
    logger.LogInformation("IO bound Start...");
    var clock = Stopwatch.StartNew();
    Thread.Sleep(ms);
    logger.LogInformation("IO bound End...");
    return Results.Text($"IO Bound Task Completed cost {clock.ElapsedMilliseconds} ms");
});

// The same wait without holding a thread: what ASP.NET Core code normally does.
app.MapGet("/io-bound-async", async (HttpRequest request, ILogger<Program> logger, CancellationToken aborted) =>
{
    if (!Query.TryGetInt(request, "ms", 5_000, 0, 60_000, out var ms, out var problem))
    {
        return problem;
    }
    logger.LogInformation("IO bound async Start...");
    var clock = Stopwatch.StartNew();
    await Task.Delay(ms, aborted);
    logger.LogInformation("IO bound async End...");
    return Results.Text($"IO Bound Task Completed cost {clock.ElapsedMilliseconds} ms");
});

// GET as in the seed; POST is the same increment for clients behind a proxy that retries: nginx's
// proxy_next_upstream repeats a GET on the next server after it reached the first one, never a POST.
app.MapMethods("/visits", ["GET", "POST"], async (IVisitCounter counter) => (await counter.IncrementAsync()).ToString());

app.MapGet("/boom", string () => throw new InvalidOperationException("Boom: /boom always fails, to show the error handling"));

app.MapHealthChecks("/healthz", new HealthCheckOptions
{
    ResponseWriter = (context, report) =>
        context.Response.WriteAsync(report.Status == HealthStatus.Healthy ? "ok" : report.Status.ToString().ToLowerInvariant()),
});

app.Run();
return 0;
