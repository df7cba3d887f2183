using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Corral.Agent.Contract;
using Corral.Metrics;

namespace Corral.Control;

/// <summary>
/// `corral ctl [--control-socket PATH | -p PIDFILE] COMMAND [--json]`: sends one command to a running
/// master's control socket and prints its reply. Exit 0 on success; 2 with one line on stderr for a
/// bad command, a missing socket or an error the master reports.
/// </summary>
public static class CtlCommand
{
    public const string Usage = "usage: corral ctl [--control-socket PATH | -p PIDFILE] {status | add N | remove N | reload | kill PID} [--json]";

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? socketPath = null;
        var json = false;
        var words = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--json":
                    json = true;
                    break;
                case "--control-socket" or "-p" or "--pid" when i + 1 < args.Length:
                    socketPath = args[i] == "--control-socket" ? args[i + 1] : args[i + 1] + ".ctl";
                    i++;
                    break;
                case "-h" or "--help":
                    stdout.WriteLine(Usage);
                    return ExitCodes.Ok;
                default:
                    if (args[i].StartsWith('-') && !IsNumber(args[i]))
                    {
                        return Fail(stderr, $"unknown option {args[i]}; {Usage}");
                    }
                    words.Add(args[i]);
                    break;
            }
        }
        if (socketPath is null)
        {
            return Fail(stderr, $"no control socket: give --control-socket PATH or -p PIDFILE; {Usage}");
        }
        var command = string.Join(' ', words);
        var ok = words switch
        {
            ["status"] or ["reload"] => true,
            ["add" or "remove", var n] => int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var c) && c >= 1,
            ["kill", var pid] => int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out _),
            _ => false,
        };
        if (!ok)
        {
            return Fail(stderr, words.Count == 0 ? $"no command; {Usage}" : $"bad command '{command}'; {Usage}");
        }

        if (!File.Exists(socketPath))
        {
            return Fail(stderr, $"no control socket at {socketPath} (is corral running, with this --control-socket or -p?)");
        }
        string replyText;
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            using var stream = new NetworkStream(socket, ownsSocket: false);
            stream.Write(Encoding.UTF8.GetBytes(command + "\n"));
            socket.ReceiveTimeout = 15000;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            replyText = reader.ReadLine() ?? throw new IOException("the master closed the connection without a reply");
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return Fail(stderr, $"cannot reach the master at {socketPath}: {e.Message} (is corral running with this control socket?)");
        }

        JsonObject reply;
        try
        {
            reply = JsonNode.Parse(replyText)?.AsObject() ?? throw new FormatException("empty reply");
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or InvalidOperationException)
        {
            return Fail(stderr, $"unreadable reply from the master: {e.Message}");
        }
        if (json)
        {
            stdout.WriteLine(reply["status"]?.ToJsonString() ?? reply.ToJsonString());
            return reply["ok"]?.GetValue<bool>() == true ? ExitCodes.Ok : ExitCodes.Usage;
        }
        if (reply["ok"]?.GetValue<bool>() != true)
        {
            return Fail(stderr, reply["error"]?.GetValue<string>() ?? "the master refused the command");
        }
        if (reply["status"] is { } status && MasterSnapshot.FromJson(status.ToJsonString()) is { } snapshot)
        {
            stdout.Write(FormatStatus(snapshot));
        }
        else
        {
            stdout.WriteLine(reply["message"]?.GetValue<string>() ?? "ok");
        }
        return ExitCodes.Ok;
    }

    public static string FormatStatus(MasterSnapshot s)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"master {s.Pid}  corral {s.Version}  up {Duration(s.UptimeSeconds)}  workers {s.Workers.Count(w => w.State == "ready")} ready / {s.DesiredWorkers} wanted{Spares(s)}{(s.WorkersMin < s.WorkersMax ? $" (-w {s.WorkersMin}:{s.WorkersMax}, scaled up {s.ScaleUps} / down {s.ScaleDowns} times)" : "")}  requests {s.RequestsTotal}{(s.Stopping ? "  STOPPING" : "")}\n");
        if (s.WorkersMin < s.WorkersMax && s.LastScaleEvent is { } scaled)
        {
            sb.Append(inv, $"last scale event: {scaled}\n");
        }
        foreach (var l in s.Listeners)
        {
            sb.Append(inv, $"listener {l.Name}  accept queue {l.Queued}\n");
        }
        if (s.WorkerMemoryLimit > 0)
        {
            // Each worker's PSS against --max-worker-memory, on a line of its own.
            var each = string.Join(", ", s.Workers.Where(w => w.Pss > 0).Select(w => string.Create(inv, $"{w.Pid} {100.0 * w.Pss / s.WorkerMemoryLimit:0}%")));
            sb.Append(inv, $"memory limit {Mib(s.WorkerMemoryLimit)} PSS per worker, ceiling {Mib(s.WorkerMemoryCeiling)}{(each.Length > 0 ? ": " + each : "")}\n");
        }
        sb.Append(inv, $"{"PID",-8} {"STATE",-18} {"AGE",8} {"DUE IN",8} {"SERVED",8} {"INFLIGHT",8} {"RSS",10} {"PSS",10} {"GC HEAP",10}\n");
        foreach (var w in s.Workers)
        {
            var state = w.State + (w.Retiring ? $" ({w.RetireReason ?? "retiring"})" : w.Spare && w.State != "spare" ? " (spare)" : "");
            var due = w.LifetimeDueInSeconds is { } d ? (d <= 0 ? "now" : Duration(d)) : "-";
            sb.Append(inv, $"{w.Pid,-8} {state,-18} {Duration(w.AgeSeconds),8} {due,8} {w.Served,8} {w.InFlight,8} {Mib(w.Rss),10} {Mib(w.Pss),10} {Mib(w.GcHeap),10}\n");
        }
        if (s.RecentExits.Count > 0)
        {
            sb.Append(inv, $"recent exits (newest first)\n{"PID",-8} {"GEN",4} {"REASON",-16} {"LIVED",8} {"EXIT",5} {"AGO",8}\n");
            foreach (var e in s.RecentExits)
            {
                var lived = e.LivedSeconds is { } l ? Duration(l) : "-";
                var ago = e.AgoSeconds is { } a ? Duration(a) : "-";
                sb.Append(inv, $"{e.Pid,-8} {e.Generation,4} {e.Reason,-16} {lived,8} {e.ExitCode,5} {ago,8}\n");
            }
        }
        return sb.ToString();
    }

    /// <summary>", 1 spare" when there are spares (--spare-workers): the ready ones, booting ones apart.</summary>
    private static string Spares(MasterSnapshot s)
    {
        var ready = s.Workers.Count(w => w.State == "spare");
        var booting = s.Workers.Count(w => w.Spare && w.State == "booting");
        return ready + booting == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $" + {ready} spare{(ready == 1 ? "" : "s")}{(booting > 0 ? $" ({booting} booting)" : "")}");
    }

    private static string Duration(double seconds) => seconds switch
    {
        < 120 => seconds.ToString("0.0", CultureInfo.InvariantCulture) + "s",
        < 7200 => (seconds / 60).ToString("0.0", CultureInfo.InvariantCulture) + "m",
        _ => (seconds / 3600).ToString("0.0", CultureInfo.InvariantCulture) + "h",
    };

    private static string Mib(long bytes) => bytes <= 0 ? "-" : (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + "M";

    private static bool IsNumber(string s) => long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _);

    private static int Fail(TextWriter stderr, string text)
    {
        stderr.WriteLine("corral ctl: error: " + text);
        return ExitCodes.Usage;
    }
}
