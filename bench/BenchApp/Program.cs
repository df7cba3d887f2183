// The seed's two endpoints (a CPU-bound and an IO-bound task), plus an asynchronous IO variant
// and a tiny "/" for throughput runs. Bodies keep the seed's wording:
// "IO Bound Task Completed cost N ms".
//
// The CPU work is a FIXED amount of work: a deterministic integer loop of `iters` iterations
// (query ?iters=, else the BENCH_CPU_ITERS environment variable). It is not the seed's factorial:
// we compare how servers schedule requests, not how fast each runtime multiplies big integers, so
// bench/seed-tables.sh calibrates `iters` (and the Python app's own count) so that one request
// takes the same ~t seconds on both.
using System.Diagnostics;
using System.Globalization;
using BenchApp;

// Content root = the app's folder, so appsettings.json is found whatever the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
});
var app = builder.Build();

long defaultIters = long.TryParse(
    Environment.GetEnvironmentVariable("BENCH_CPU_ITERS"),
    NumberStyles.Integer,
    CultureInfo.InvariantCulture,
    out var envIters) ? envIters : Work.DefaultIters;

app.MapGet("/", () => "Hello, World!");

app.MapGet("/cpu-bound", (HttpContext http, long? iters) =>
{
    var n = iters ?? defaultIters;
    var sw = Stopwatch.StartNew();
    var result = Work.Spin(n);
    var ms = sw.ElapsedMilliseconds;
    http.Response.Headers["X-Bench-Result"] = result.ToString(CultureInfo.InvariantCulture);
    http.Response.Headers["X-Bench-Iters"] = n.ToString(CultureInfo.InvariantCulture);
    return $"CPU Bound Task Completed cost {ms} ms";
});

// Blocks the request's thread, like the seed's time.sleep(5).
app.MapGet("/io-bound", (int? ms) =>
{
    var sw = Stopwatch.StartNew();
    Thread.Sleep(ms ?? Work.DefaultSleepMs);
    return $"IO Bound Task Completed cost {sw.ElapsedMilliseconds} ms";
});

// The same wait without holding a thread: what an ASP.NET Core app would normally write.
app.MapGet("/io-bound-async", async (int? ms, CancellationToken ct) =>
{
    var sw = Stopwatch.StartNew();
    await Task.Delay(ms ?? Work.DefaultSleepMs, ct);
    return $"IO Bound Task Completed cost {sw.ElapsedMilliseconds} ms";
});

app.Run();
