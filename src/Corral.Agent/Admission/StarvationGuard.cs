namespace Corral.Agent.Admission;

/// <summary>
/// For the async class: blocking handlers (the seed's Thread.Sleep) must run at once, yet a thread
/// pool pre-sized to hundreds of threads costs throughput and tail latency on fast handlers (threads
/// injected under load, then context switches). Instead this watches from its own thread (the pool
/// may be the thing that is stuck) and raises the pool's minimum only while the pool is seen
/// starving, then gives it back (<see cref="StarvationPolicy"/>).
/// </summary>
internal sealed class StarvationGuard
{
    private readonly StarvationPolicy _policy;
    private readonly StarvationEpisodes _episodes = new();

    /// <summary>When the probe now queued was queued (Environment.TickCount64); 0: none queued.</summary>
    private long _probeQueuedAt;

    /// <summary>When it ran; 0: not yet.</summary>
    private long _probeRanAt;

    /// <summary>
    /// What the worker is serving, for the master's starvation warning (one line: the endpoints of the
    /// requests running now); null: nothing to say. Set by whoever keeps the running requests.
    /// </summary>
    public static Func<string?>? ServingNow { get; set; }

    private StarvationGuard(StarvationPolicy policy) => _policy = policy;

    public static void Start(int cap)
    {
        var guard = new StarvationGuard(new StarvationPolicy(cap));
        new Thread(guard.Run) { IsBackground = true, Name = "corral-starvation-guard" }.Start();
    }

    private void Run()
    {
        var lastCompleted = ThreadPool.CompletedWorkItemCount;
        var last = Environment.TickCount64;
        while (true)
        {
            Thread.Sleep(StarvationPolicy.Interval);
            try
            {
                var now = Environment.TickCount64;
                var completed = ThreadPool.CompletedWorkItemCount;
                ThreadPool.GetMinThreads(out var workers, out var io);
                var minimum = _policy.Observe(
                    completed - lastCompleted, ThreadPool.PendingWorkItemCount, ThreadPool.ThreadCount, TimeSpan.FromMilliseconds(now - last), workers);
                if (minimum is { } wanted)
                {
                    ThreadPool.SetMinThreads(wanted, io);
                }
                lastCompleted = completed;
                last = now;
                Probe(now);
            }
            catch (Exception e)
            {
                // An exception on this thread of its own would end the process.
                Background.Report("Thread-pool starvation guard", e);
            }
        }
    }

    /// <summary>
    /// How long queued work waits, measured from this thread: a probe work item, one at a time; its
    /// wait (so far, or in all once it ran) goes to <see cref="StarvationEpisodes"/>, which says when
    /// to tell the master.
    /// </summary>
    private void Probe(long now)
    {
        long waited;
        if (_probeQueuedAt == 0)
        {
            _probeRanAt = 0;
            _probeQueuedAt = now;
            ThreadPool.UnsafeQueueUserWorkItem(static guard => Volatile.Write(ref guard._probeRanAt, Environment.TickCount64), this, preferLocal: false);
            return;
        }
        var ran = Volatile.Read(ref _probeRanAt);
        if (ran != 0)
        {
            waited = ran - _probeQueuedAt;
            _probeQueuedAt = 0;
        }
        else
        {
            waited = now - _probeQueuedAt;
        }
        if (_episodes.Observe(waited, now) is { } delay)
        {
            string? serving = null;
            try
            {
                serving = ServingNow?.Invoke();
            }
            catch (Exception e)
            {
                Background.Report("Thread-pool starvation report", e);
            }
            AgentRuntime.ReportStarved(delay, serving);
        }
    }
}
