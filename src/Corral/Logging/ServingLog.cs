using Corral.Agent.Contract;
using Corral.Agent.Http;

namespace Corral.Logging;

/// <summary>
/// What the workers' "serving" reports say (<see cref="ServingReport"/>), logged by the master once
/// rather than once per worker: per listener, the protocols it speaks and who chose them, and the
/// app's own URLs and endpoints that corral's listeners replaced. A line is logged when the first
/// worker reports it, and again only when a report says something else (a HUP that loaded an app
/// configured otherwise).
/// </summary>
public sealed class ServingLog(IReadOnlyList<string> listeners, IMasterLog log)
{
    private readonly Dictionary<string, string> _protocols = [];
    private string? _replaced;
    private string? _warning;

    /// <summary>One worker's report (the text after "serving "); garbage is dropped.</summary>
    public void OnReport(string json)
    {
        if (ServingReport.TryParse(json) is not { } report)
        {
            return;
        }
        if (HttpProtocolChoice.TryParseSetting(report.Protocols, out var spoken, out _))
        {
            var asked = HttpProtocolChoice.TryParseSetting(report.Asked, out var a, out _) ? a : spoken;
            foreach (var listener in listeners)
            {
                var line = HttpProtocolChoice.Describe(listener, spoken, asked, report.Source, report.Tls);
                if (_protocols.GetValueOrDefault(listener) != line)
                {
                    _protocols[listener] = line;
                    log.Info(line);
                }
            }
        }
        if (report.Warning != _warning)
        {
            _warning = report.Warning;
            if (_warning is not null)
            {
                log.Warning(_warning);
            }
        }
        var replaced = report.Replaced.Length == 0 ? null
            : $"Overriding the app's own URLs and Kestrel endpoints ({string.Join(", ", report.Replaced)}): serving on corral's listeners ({string.Join(", ", listeners)})";
        if (replaced != _replaced)
        {
            _replaced = replaced;
            if (replaced is not null)
            {
                log.Info(replaced);
            }
        }
    }
}
