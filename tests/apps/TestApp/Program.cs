// Behaviour switches come from the environment so one build serves every test:
//   TESTAPP_THROW_AT_START=text  throws before the host is built
//   TESTAPP_URLS=url             the app's own Kestrel endpoint in code (corral must override it)
var throwText = Environment.GetEnvironmentVariable("TESTAPP_THROW_AT_START");
if (!string.IsNullOrEmpty(throwText))
{
    throw new InvalidOperationException(throwText);
}

//   TESTAPP_CRASH_IF_EXISTS=path  throws at start while that file exists (a crash loop on demand)
if (Environment.GetEnvironmentVariable("TESTAPP_CRASH_IF_EXISTS") is { Length: > 0 } crashFlag && File.Exists(crashFlag))
{
    throw new InvalidOperationException("crash flag " + crashFlag + " is set");
}

//   TESTAPP_SLEEP_AT_START_MS=n  sleeps n ms before building its host (a slow Main)
if (int.TryParse(Environment.GetEnvironmentVariable("TESTAPP_SLEEP_AT_START_MS"), out var sleepAtStart))
{
    Console.WriteLine($"TestApp: sleeps {sleepAtStart} ms before building its host (pid {Environment.ProcessId})");
    Thread.Sleep(sleepAtStart);
}

var builder = WebApplication.CreateBuilder(args);
//   TESTAPP_START_DELAY_MS=n     a hosted service takes n ms to start, honouring the host's token
//                                (a stop asked meanwhile cancels the start, as in any generic host)
if (int.TryParse(Environment.GetEnvironmentVariable("TESTAPP_START_DELAY_MS"), out var startDelay))
{
    builder.Services.AddHostedService(_ => new SlowStart(startDelay));
}
if (Environment.GetEnvironmentVariable("TESTAPP_URLS") is { Length: > 0 } own)
{
    builder.WebHost.ConfigureKestrel(k => k.ListenLocalhost(new Uri(own).Port));
}
//   TESTAPP_PROTOCOLS=Http2      the app's endpoint defaults in code: ConfigureEndpointDefaults(l => l.Protocols = ...)
if (Enum.TryParse<Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols>(Environment.GetEnvironmentVariable("TESTAPP_PROTOCOLS"), out var protocols))
{
    builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = protocols));
}
var app = builder.Build();

// How many requests for "/" this process has seen (warm-up requests included): GET /hits. And the
// most requests it has ever run at once: GET /max-in-flight.
var hits = 0;
var inFlight = 0;
var maxInFlight = 0;
app.Use(async (context, next) =>
{
    if (context.Request.Path == "/")
    {
        Interlocked.Increment(ref hits);
    }
    var now = Interlocked.Increment(ref inFlight);
    int seen;
    while (now > (seen = Volatile.Read(ref maxInFlight)) && Interlocked.CompareExchange(ref maxInFlight, now, seen) != seen)
    {
    }
    try
    {
        await next(context);
    }
    finally
    {
        Interlocked.Decrement(ref inFlight);
    }
});
app.MapGet("/hits", () => Volatile.Read(ref hits).ToString(System.Globalization.CultureInfo.InvariantCulture));
app.MapGet("/max-in-flight", () => Volatile.Read(ref maxInFlight).ToString(System.Globalization.CultureInfo.InvariantCulture));
app.MapGet("/", () => "Hello World!");
app.MapGet("/pid", () => Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
// Allocates MB megabytes and keeps them for the request: past the GC's heap limit
// (DOTNET_GCHeapHardLimit) the runtime throws OutOfMemoryException, as a leaking app meets it.
app.MapGet("/allocate", (int mb) =>
{
    var block = new byte[mb * 1024L * 1024L];
    Array.Fill(block, (byte)1);
    return $"{Environment.ProcessId} {block.Length}";
});
app.MapGet("/sleep", (int ms) =>
{
    Thread.Sleep(ms);
    return Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
});
// A blocking request that reports when it ran: "PID START_MS END_MS" (Unix milliseconds).
app.MapGet("/span", (int ms) =>
{
    var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    Thread.Sleep(ms);
    var end = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    return $"{Environment.ProcessId} {start} {end}";
});
app.MapGet("/delay", async (int ms) =>
{
    await Task.Delay(ms);
    return Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
});
app.MapGet("/env/{name}", (string name) => Environment.GetEnvironmentVariable(name) ?? "");
app.MapGet("/bytes", (int n) => new string('x', n));
// Opens /dev/null until the process is out of file descriptors (EMFILE), holds them ms, then closes
// them: "OPENED" (how many it could open). Awaits rather than blocks: a blocked pool thread makes the
// runtime start another, which it cannot do without a descriptor (its thread pool ends the process).
app.MapGet("/exhaust-fds", async (int ms) =>
{
    var held = new List<FileStream>();
    try
    {
        while (true)
        {
            held.Add(new FileStream("/dev/null", FileMode.Open, FileAccess.Read));
        }
    }
    catch (IOException)
    {
    }
    await Task.Delay(ms);
    foreach (var f in held)
    {
        f.Dispose();
    }
    return held.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
});
app.MapLeakEndpoints();
app.MapHangEndpoints();
app.MapGet("/client", (HttpContext c) => $"{c.Connection.RemoteIpAddress} {c.Request.Scheme} {c.Request.Protocol}");

app.MapStackProbeEndpoints();
app.Run();

internal sealed class SlowStart(int ms) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        Console.WriteLine($"TestApp: a hosted service starts for {ms} ms (pid {Environment.ProcessId})");
        return Task.Delay(ms, cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
