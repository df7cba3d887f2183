using System.Globalization;
using System.Text.Json.Nodes;
using Corral.Agent.Contract;
using Corral.Logging;
using Corral.Metrics;
using Corral.Supervision;

namespace Corral.Control;

/// <summary>
/// The `corral ctl` commands, one method each (Gunicorn's ctl/handlers.py), run on the master's loop:
/// each asks the arbiter and answers in JSON, {"ok":true,"message":...,"status":{...}} or
/// {"ok":false,"error":...}.
/// </summary>
public sealed class CtlHandlers(Arbiter arbiter, Observatory observatory, IMasterLog log)
{
    /// <summary>The most workers `add N` or `remove N` changes at once.</summary>
    public const int MaxChange = 1024;

    /// <summary>One command line as the control socket received it: status, add N, remove N, reload, kill PID.</summary>
    public string Execute(string command)
    {
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return words switch
        {
            ["status"] => Status(),
            ["add", var n] => Add(n),
            ["remove", var n] => Remove(n),
            ["reload"] => Reload(),
            ["kill", var pid] => Kill(pid),
            _ => Error($"unknown command '{command}': expected status, add N, remove N, reload or kill PID"),
        };
    }

    /// <summary>`status`: the master's snapshot (workers, listeners, totals).</summary>
    public string Status() => Ok("", JsonNode.Parse(observatory.Snapshot(arbiter).ToJson()));

    /// <summary>`add N`: N more workers wanted.</summary>
    public string Add(string n) => ChangeWorkers("add", n, +1);

    /// <summary>`remove N`: N fewer workers wanted (at least one stays); the oldest drain.</summary>
    public string Remove(string n) => ChangeWorkers("remove", n, -1);

    /// <summary>`reload`: as HUP, new workers boot, then the old ones drain.</summary>
    public string Reload()
    {
        arbiter.OnSignal(Signals.HUP);
        return Ok("reloading: new workers boot, then the old ones drain");
    }

    /// <summary>`kill PID`: that worker drains (TERM) and a new one takes its place.</summary>
    public string Kill(string pidText)
    {
        if (!int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            return Error($"kill: PID must be a number, not '{pidText}'");
        }
        if (!arbiter.KillWorker(pid))
        {
            return Error($"kill: {pid} is not a serving worker of this master");
        }
        return Ok($"worker {pid}: sent TERM; it drains and is replaced");
    }

    private string ChangeWorkers(string verb, string nText, int sign)
    {
        if (!int.TryParse(nText, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || n > MaxChange)
        {
            return Error($"{verb}: N must be a whole number from 1 to {MaxChange}, not '{nText}'");
        }
        if (arbiter.Stopping)
        {
            return Error("the master is stopping");
        }
        arbiter.ChangeWorkers(sign * n);
        var range = arbiter.Scaler is not null ? $" (-w {arbiter.WorkersMin}:{arbiter.WorkersMax})" : "";
        log.Info($"Workers wanted: {arbiter.DesiredWorkers}{range} (asked on the control socket)");
        return Ok($"workers wanted: {arbiter.DesiredWorkers}{range}");
    }

    private static string Ok(string message, JsonNode? status = null)
    {
        var o = new JsonObject { ["ok"] = true, ["message"] = message };
        if (status is not null)
        {
            o["status"] = status;
        }
        return o.ToJsonString();
    }

    private static string Error(string text) => new JsonObject { ["ok"] = false, ["error"] = text }.ToJsonString();
}
