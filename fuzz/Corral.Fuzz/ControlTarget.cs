using System.Text;
using Corral.Agent.Contract;
using Corral.Metrics;

namespace Corral.Fuzz;

/// <summary>
/// control: what a worker writes on its control channel, read as the master reads it (UTF-8, one
/// message a line): <see cref="Protocol.Parse"/>, then each "stats" line's JSON through
/// <see cref="Observatory.OnStats"/> (the master's loop: an exception there stops the master), then
/// the Prometheus exposition of what was counted. Promises: no exception; a heartbeat's numbers are
/// not negative; the metrics still export.
/// </summary>
internal static class ControlTarget
{
    public static readonly Target Target = new("control", "worker-to-master control lines and the stats JSON (Protocol.Parse, Observatory.OnStats)", Run, Targets.Tokens(
        "ready\n", "recycle\n", "hb ", "error ", "stats ", "\n", "{", "}", "[", "]", ":", ",", "\"", "0", "-1", "1e308", "1.5", "null", "true",
        "\"requests\"", "\"bucket_counts\"", "\"bucket_sums\"", "\"inflight\"", "\"gc_heap\"", "\"rss\"", "\"pss\"", "\"GET 2xx\"", "[1,0.5]", "[0.001]", "\\u0000", "9223372036854775807"));

    private static void Run(byte[] input)
    {
        var observatory = new Observatory(new ListenQueue([]), new MasterMetrics());
        foreach (var line in Encoding.UTF8.GetString(input).Split('\n'))
        {
            var message = Protocol.Parse(line);
            switch (message?.Kind)
            {
                case MessageKind.Heartbeat:
                    Targets.Promise(message.Served >= 0 && message.InFlight >= 0 && message.BusyMs >= 0, $"a negative heartbeat: {message}");
                    break;
                case MessageKind.Stats:
                    observatory.OnStats(4242, message.Text!);
                    break;
                case MessageKind.Error:
                    Targets.Promise(message.Text is not null, "an error message without its text");
                    break;
            }
        }
        var text = observatory.Metrics.ExportAsync(CancellationToken.None).GetAwaiter().GetResult();
        Targets.Promise(text.Contains("corral_requests_total", StringComparison.Ordinal), "the exposition lost corral_requests_total");
    }
}
