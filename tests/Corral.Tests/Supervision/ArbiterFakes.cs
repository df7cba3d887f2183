using Corral.Agent.Contract;
using Corral.Logging;
using Corral.Settings;
using Corral.Supervision;


namespace Corral.Tests;

/// <summary>A clock that moves only when told: wall clock and monotonic clock together.</summary>
internal sealed class FakeClock : TimeProvider
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Where the monotonic clock stands at <see cref="Start"/>: a host up for a day.</summary>
    private static readonly TimeSpan Uptime = TimeSpan.FromDays(1);

    private DateTimeOffset _now = Start;

    public override DateTimeOffset GetUtcNow() => _now;

    public override long GetTimestamp() => (_now - Start + Uptime).Ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>The monotonic clock in milliseconds, as a worker stamps its heartbeats.</summary>
    public long MonotonicMs => Protocol.MonotonicMs(GetTimestamp(), TimestampFrequency);

    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>Gunicorn's tests mock fork and kill; this records spawns (fake pids) and signals.</summary>
internal sealed class FakeProcessHost : IProcessHost
{
    private int _nextPid = 1000;

    public List<int> Spawned { get; } = [];
    public List<DateTimeOffset> SpawnTimes { get; } = [];
    public List<(int Pid, int Signal)> Sent { get; } = [];

    /// <summary>The clock spawns are timed with.</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;
    public HashSet<int> Alive { get; } = [];

    /// <summary>When set, Spawn throws this (a missing dotnet, an fd limit).</summary>
    public string? FailSpawnWith { get; set; }

    /// <summary>The pids spawned as spares (--spare-workers).</summary>
    public List<int> SpawnedSpares { get; } = [];

    public int Spawn(CorralConfig config, bool spare)
    {
        if (FailSpawnWith is { } why)
        {
            throw new SpawnException(why);
        }
        var pid = _nextPid++;
        Spawned.Add(pid);
        if (spare)
        {
            SpawnedSpares.Add(pid);
        }
        SpawnTimes.Add(Clock.GetUtcNow());
        Alive.Add(pid);
        return pid;
    }

    public bool Signal(int pid, int signal)
    {
        Sent.Add((pid, signal));
        return Alive.Contains(pid);
    }

    /// <summary>The CaptureStacks calls: which worker, why, and the thread asked first.</summary>
    public List<(int Pid, string Why, int? OsThreadId)> Captures { get; } = [];

    public void CaptureStacks(int pid, string why, int? osThreadId) => Captures.Add((pid, why, osThreadId));

    /// <summary>The WorkerReady calls, in order.</summary>
    public List<int> Readied { get; } = [];

    public void WorkerReady(int pid) => Readied.Add(pid);

    public IEnumerable<int> SignalsTo(int pid) => Sent.Where(s => s.Pid == pid).Select(s => s.Signal);
}

internal sealed class CapturingLog : IMasterLog
{
    public List<(string Level, string Text)> Lines { get; } = [];
    public int Reopened { get; private set; }

    public void Debug(string text) => Lines.Add(("debug", text));
    public void Info(string text) => Lines.Add(("info", text));
    public void Warning(string text) => Lines.Add(("warning", text));
    public void Error(string text) => Lines.Add(("error", text));
    public void Critical(string text) => Lines.Add(("critical", text));
    public void Reopen() => Reopened++;

    public bool Has(string level, string text) => Lines.Any(l => l.Level == level && l.Text.Contains(text, StringComparison.Ordinal));
}

/// <summary>An arbiter wired to the fakes, with the master loop's events as methods.</summary>
internal sealed class ArbiterRig
{
    public ArbiterRig(params string[] argv)
    {
        Config = Settings.Ok(argv.Append("App.dll").ToArray());
        Host.Clock = Clock;
        Arbiter = new Corral.Supervision.Arbiter(Config, Host, Clock, Log, () => NextConfig);
    }

    public CorralConfig Config { get; }
    public FakeClock Clock { get; } = new();
    public FakeProcessHost Host { get; } = new();
    public CapturingLog Log { get; } = new();
    public Corral.Supervision.Arbiter Arbiter { get; }

    /// <summary>What the HUP reload callback returns (null: the new configuration is invalid).</summary>
    public CorralConfig? NextConfig { get; set; }

    public IEnumerable<Worker> Workers => Arbiter.Workers;
    public int[] Pids => [.. Arbiter.Workers.Select(w => w.Pid).Order()];
    public int[] ServingPids => [.. Arbiter.Workers.Where(w => w.IsServing).Select(w => w.Pid).Order()];
    public int ReadyCount => Arbiter.Workers.Count(w => w.State == WorkerState.Ready);
    public int[] Booting => [.. Arbiter.Workers.Where(w => w.State == WorkerState.Booting).Select(w => w.Pid).Order()];

    public Worker Worker(int pid) => Arbiter.Workers.Single(w => w.Pid == pid);

    /// <summary>Start, and every worker says ready: the state after a good boot.</summary>
    public ArbiterRig Booted()
    {
        Arbiter.Start();
        ReadyAll();
        Assert.Equal(Config.Workers, ReadyCount);
        return this;
    }

    public void Ready(int pid) => Arbiter.OnMessage(pid, new Message(MessageKind.Ready));

    public void ReadyAll()
    {
        foreach (var pid in Booting)
        {
            Ready(pid);
        }
    }

    /// <summary>
    /// A heartbeat as the agent sends it, stamped with its send time: now, or <paramref name="sentAgo"/>
    /// (one that waited unread in the control socket); <paramref name="stamped"/> false: an agent that
    /// sent no time.
    /// </summary>
    public void Heartbeat(int pid, int inFlight = 0, long busyMs = 0, long served = 0, TimeSpan sentAgo = default, bool stamped = true) =>
        Arbiter.OnMessage(pid, new Message(MessageKind.Heartbeat, served, inFlight, busyMs,
            SentMs: stamped ? Clock.MonotonicMs - (long)sentAgo.TotalMilliseconds : 0));

    public void HeartbeatAll()
    {
        foreach (var w in Arbiter.Workers.ToList())
        {
            Heartbeat(w.Pid);
        }
    }

    public void Error(int pid, string text) => Arbiter.OnMessage(pid, new Message(MessageKind.Error, Text: text));

    /// <summary>The agent's "hung" line: a request of <paramref name="pid"/> ran past --request-timeout and its grace.</summary>
    public void Hung(int pid, int osThreadId = 4242, string method = "GET", string path = "/hang/spin", string requestId = "0HN1:00000001") =>
        Arbiter.OnMessage(pid, new Message(MessageKind.Hung, Hung: new HungRequest(osThreadId, method, path, requestId)));

    public void Recycle(int pid) => Arbiter.OnMessage(pid, new Message(MessageKind.Recycle));

    public void Exit(int pid, int code = 0)
    {
        Host.Alive.Remove(pid);
        Arbiter.OnExit(pid, code);
    }

    /// <summary>Every worker that was sent TERM, QUIT or KILL exits, as real ones would.</summary>
    public void ExitSignalled()
    {
        foreach (var w in Arbiter.Workers.Where(w => !w.IsServing).ToList())
        {
            var last = Host.SignalsTo(w.Pid).Last();
            Exit(w.Pid, 128 + last);
        }
    }

    public void Signal(int signal) => Arbiter.OnSignal(signal);

    /// <summary>
    /// Whether each capture of stacks the arbiter asks for ends right after the tick that asked (as a
    /// quick capture's StacksCaptured reaches the loop next); false: they never end (a capture that hangs).
    /// </summary>
    public bool CapturesEnd { get; set; } = true;

    private int _capturesDelivered;

    /// <summary>The loop hears StacksCaptured for every capture asked since the last call.</summary>
    public void EndCaptures()
    {
        while (_capturesDelivered < Host.Captures.Count)
        {
            Arbiter.OnStacksCaptured(Host.Captures[_capturesDelivered++].Pid);
        }
    }

    private void AfterTick()
    {
        if (CapturesEnd)
        {
            EndCaptures();
        }
        else
        {
            _capturesDelivered = Host.Captures.Count;
        }
    }

    /// <summary>Fake time passes in steps of the master's tick, with a tick after each.</summary>
    public void Run(TimeSpan total, TimeSpan? step = null, Action? eachStep = null)
    {
        var s = step ?? TimeSpan.FromMilliseconds(100);
        for (var t = TimeSpan.Zero; t < total; t += s)
        {
            Clock.Advance(s);
            eachStep?.Invoke();
            Arbiter.Tick();
            AfterTick();
        }
    }

    public void Tick(TimeSpan advance)
    {
        Clock.Advance(advance);
        Arbiter.Tick();
        AfterTick();
    }
}
