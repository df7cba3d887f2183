// The seed's test client, faithfully: n requests fired at once, the total wall time measured.
//
// The seed's Python client submits n calls of requests.get(url, timeout=60) to a
// ThreadPoolExecutor(max_workers=n) and times the whole batch. Here: n dedicated threads (so the
// client's own thread pool can never be what delays a request), each with a fresh HttpClient and
// so a fresh connection (requests.get opens a new session per call), all held behind one gate and
// released together; the clock starts at the release and stops when the last response is read.
//
// Prints one JSON line: {"url":..., "n":..., "total_ms":..., "ok":..., "errors":..., "client_cpu_ms":...,
// "done_ms":[completion time of each request since the release, sorted], "server_ms":[the
// "cost N ms" each body reports], "first_error":...}. Exit code 0 when every request got a 2xx.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

string? url = null;
var n = 1;
var timeoutSeconds = 60.0;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--url":
            url = args[++i];
            break;
        case "-n":
            n = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--timeout":
            timeoutSeconds = double.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        default:
            Console.Error.WriteLine("usage: SeedClient --url URL [-n N] [--timeout SECONDS]");
            return 2;
    }
}

if (url is null || n < 1)
{
    Console.Error.WriteLine("usage: SeedClient --url URL [-n N] [--timeout SECONDS]");
    return 2;
}

var costPattern = new Regex(@"cost (\d+) ms", RegexOptions.CultureInvariant);
var ready = new CountdownEvent(n);
var gate = new ManualResetEventSlim(false);
var clock = new Stopwatch();
var done = new double[n];
var serverMs = new long?[n];
var errors = new string?[n];
var threads = new Thread[n];

for (var k = 0; k < n; k++)
{
    var index = k;
    threads[k] = new Thread(() =>
    {
        using var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(timeoutSeconds) };
        ready.Signal();
        gate.Wait();
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            using var response = client.Send(request, HttpCompletionOption.ResponseContentRead);
            using var reader = new StreamReader(response.Content.ReadAsStream(), Encoding.UTF8);
            var body = reader.ReadToEnd();
            if (!response.IsSuccessStatusCode)
            {
                errors[index] = $"HTTP {(int)response.StatusCode}";
            }

            var match = costPattern.Match(body);
            if (match.Success)
            {
                serverMs[index] = long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            }
        }
        catch (Exception e)
        {
            errors[index] = $"{e.GetType().Name}: {e.Message}";
        }

        done[index] = clock.Elapsed.TotalMilliseconds;
    })
    {
        IsBackground = true,
        Name = $"seed-client-{k}",
    };
    threads[k].Start();
}

ready.Wait();
clock.Start();
gate.Set();
foreach (var thread in threads)
{
    thread.Join();
}

clock.Stop();

var failed = errors.Count(e => e is not null);
using var stdout = Console.OpenStandardOutput();
using (var json = new Utf8JsonWriter(stdout))
{
    json.WriteStartObject();
    json.WriteString("url", url);
    json.WriteNumber("n", n);
    json.WriteNumber("total_ms", Math.Round(clock.Elapsed.TotalMilliseconds, 1));
    json.WriteNumber("ok", n - failed);
    json.WriteNumber("errors", failed);
    json.WriteNumber("client_cpu_ms", Math.Round(Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds));
    json.WriteStartArray("done_ms");
    foreach (var d in done.Order())
    {
        json.WriteNumberValue(Math.Round(d, 1));
    }

    json.WriteEndArray();
    json.WriteStartArray("server_ms");
    foreach (var s in serverMs)
    {
        if (s is { } value)
        {
            json.WriteNumberValue(value);
        }
        else
        {
            json.WriteNullValue();
        }
    }

    json.WriteEndArray();
    var firstError = errors.FirstOrDefault(e => e is not null);
    if (firstError is null)
    {
        json.WriteNull("first_error");
    }
    else
    {
        json.WriteString("first_error", firstError);
    }

    json.WriteEndObject();
}

stdout.WriteByte((byte)'\n');
return failed == 0 ? 0 : 1;
