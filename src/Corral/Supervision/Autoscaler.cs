using System.Globalization;

namespace Corral.Supervision;

/// <summary>
/// -w MIN:MAX, the decision alone (uWSGI's "cheaper", Passenger's pool): load samples in, the wanted
/// number of workers out. Pure: time comes with each sample, so tests drive it with a fake clock.
/// <list type="bullet">
/// <item>Up one worker when every sample for <see cref="UpAfter"/> showed pressure: connections waiting
/// in the listen queue, or every slot of the ready workers busy. Not while a worker boots (its effect
/// is not seen yet).</item>
/// <item>Down one worker when, for <see cref="DownAfter"/> (and that long since the last step up), no
/// connection waited and the busiest sample would still have left a free slot with one worker fewer.</item>
/// <item>Never below <see cref="Min"/> nor above <see cref="Max"/>; at least <see cref="Cooldown"/> between two steps.</item>
/// </list>
/// </summary>
public sealed class Autoscaler
{
    private readonly Queue<LoadSample> _window = [];
    private DateTimeOffset? _pressureSince;
    private DateTimeOffset? _lastChange;
    private DateTimeOffset _lastUp;

    public Autoscaler(int min, int max, DateTimeOffset now)
    {
        if (min < 1 || max < min)
        {
            throw new ArgumentOutOfRangeException(nameof(min), $"{min}:{max} is not a range of workers");
        }
        Min = min;
        Max = max;
        _lastUp = now;
    }

    public int Min { get; private set; }
    public int Max { get; private set; }
    public TimeSpan UpAfter { get; set; } = TimeSpan.FromSeconds(1);
    public TimeSpan DownAfter { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan Cooldown { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>--scale-up-after, --scale-down-after, --scale-cooldown from <paramref name="config"/>.</summary>
    public void UseTimings(Settings.CorralConfig config)
    {
        UpAfter = config.ScaleUpAfter;
        DownAfter = config.ScaleDownAfter;
        Cooldown = config.ScaleCooldown;
    }

    /// <summary>
    /// What the master saw at <paramref name="At"/>: connections in the listen queues (0 when none can be
    /// read: unix sockets), requests in flight in the ready workers, their slots in all and each,
    /// and whether a worker of the current generation is booting.
    /// </summary>
    public readonly record struct LoadSample(DateTimeOffset At, long Queued, int Busy, int Slots, int SlotsPerWorker, bool Booting)
    {
        public bool Pressure => Queued > 0 || (Slots > 0 && Busy >= Slots);
    }

    /// <summary>A change of the wanted count: to <paramref name="To"/>, with the reason (for the log line).</summary>
    public sealed record Decision(int To, bool Up, string Reason);

    /// <summary>
    /// TTIN/TTOU, `corral ctl add/remove N`: MIN and MAX move by <paramref name="by"/> together, each kept
    /// within 1..<paramref name="limit"/> (MIN never above MAX), so the operator's intent outlasts the next decision.
    /// </summary>
    public void Shift(int by, DateTimeOffset now, int limit = Settings.WorkerRange.Limit)
    {
        Max = Math.Clamp(Max + by, 1, limit);
        Min = Math.Clamp(Min + by, 1, Max);
        _lastChange = now;
    }

    /// <summary>
    /// One sample, with <paramref name="desired"/> the count wanted now: a decision to change it, or null.
    /// Samples come about twice a second; only their times matter, not their rate.
    /// </summary>
    public Decision? OnSample(LoadSample s, int desired)
    {
        var now = s.At;
        _window.Enqueue(s);
        while (_window.Count > 0 && _window.Peek().At <= now - DownAfter)
        {
            _window.Dequeue();
        }
        _pressureSince = s.Pressure ? _pressureSince ?? now : null;

        if (desired < Min)
        {
            return Change(now, Min, up: true, $"below the minimum of {Min} (-w {Min}:{Max})");
        }
        if (desired > Max)
        {
            return Change(now, Max, up: false, $"above the maximum of {Max} (-w {Min}:{Max})");
        }
        var coolEnough = _lastChange is not { } last || now - last >= Cooldown;
        if (_pressureSince is { } since && now - since >= UpAfter && desired < Max && !s.Booting && coolEnough)
        {
            var held = (now - since).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture);
            var why = s.Queued > 0
                ? $"{s.Queued} connection{(s.Queued == 1 ? "" : "s")} queued for {held} s"
                : $"all {s.Slots} slot{(s.Slots == 1 ? "" : "s")} busy for {held} s";
            _pressureSince = null; // the next step needs pressure anew, after the cool-down
            return Change(now, desired + 1, up: true, why);
        }
        if (desired > Min && coolEnough && now - _lastUp >= DownAfter && _window.All(w => !w.Pressure && w.Queued <= 0))
        {
            var peak = _window.Max(w => w.Busy);
            var fewer = (desired - 1) * Math.Max(1, s.SlotsPerWorker);
            if (peak < fewer)
            {
                var idle = DownAfter.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture);
                return Change(now, desired - 1, up: false, $"at most {peak} of {desired * Math.Max(1, s.SlotsPerWorker)} slots busy and nothing queued for {idle} s");
            }
        }
        return null;
    }

    private Decision Change(DateTimeOffset now, int to, bool up, string reason)
    {
        _lastChange = now;
        if (up)
        {
            _lastUp = now;
        }
        return new Decision(to, up, reason);
    }
}
