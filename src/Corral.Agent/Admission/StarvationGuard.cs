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

    /// <summary>Probes that ran: not counted as the pool's progress.</summary>
    private long _probesRan;

    /// <summary>How long work has been queued with nothing else completing (the guard waking on time), in ms.</summary>
    private long _stalledMs;

    /// <summary>The last second of (time, completed) samples: the pool's completion rate.</summary>
    private readonly Queue<(long At, long Completed)> _window = new();

    /// <summary>Since when the estimated wait of queued work has been at or above the threshold; 0: it is not.</summary>
    private long _slowSince;

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
                var probes = Interlocked.Read(ref _probesRan);
                var completed = ThreadPool.CompletedWorkItemCount - probes;
                // The guard's own probe, queued and not run yet, is not the app's work: counted, a probe
                // late on a busy machine would look like a stall and raise the pool's minimum, and a thread
                // the pool then starts needs a file descriptor the app may not have left.
                var probeWaiting = _probeQueuedAt != 0 && Volatile.Read(ref _probeRanAt) == 0 ? 1 : 0;
                var pending = Math.Max(0, ThreadPool.PendingWorkItemCount - probeWaiting);
                ThreadPool.GetMinThreads(out var workers, out var io);
                var minimum = _policy.Observe(
                    completed - lastCompleted, pending, ThreadPool.ThreadCount, TimeSpan.FromMilliseconds(now - last), workers);
                if (minimum is { } wanted)
                {
                    // A raised minimum makes the pool start threads at once, and the runtime needs a file
                    // descriptor to start one: out of them (EMFILE), its thread pool ends the process. Then
                    // the pool stays as it is (a lowered minimum starts no thread).
                    if (wanted < workers || DescriptorFree())
                    {
                        ThreadPool.SetMinThreads(wanted, io);
                    }
                }
                // Work queued and none of it (the probes aside) completing: a stall, however the
                // pool orders its queues (a probe in the global queue may pass blocked local work).
                // A late wake-up (the whole process paused) does not count, nor end it.
                var onTime = now - last <= StarvationPolicy.Interval.TotalMilliseconds * 2;
                _stalledMs = pending > 0 && completed == lastCompleted ? _stalledMs + (onTime ? now - last : 0) : 0;
                Estimate(now, completed, pending);
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

    /// <summary>Whether the process can open one more file descriptor (opens /dev/null and closes it).</summary>
    private static bool DescriptorFree()
    {
        try
        {
            File.OpenHandle("/dev/null").Dispose();
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>How long queued work waits by Little's law (queued / completed per ms over the last second), once it has for half the threshold.</summary>
    private long _estimatedMs;

    /// <summary>
    /// Queued work whose threads are blocked may sit in a pool thread's own queue, behind which a probe
    /// (global queue) does not wait: its wait is estimated from the queue's length and how fast the
    /// pool completes work, and counts once it has stayed above the threshold for half of it (not a burst).
    /// </summary>
    private void Estimate(long now, long completed, long pending)
    {
        _window.Enqueue((now, completed));
        while (_window.Count > 1 && now - _window.Peek().At > 1000)
        {
            _window.Dequeue();
        }
        var (since, before) = _window.Peek();
        var threshold = (long)StarvationEpisodes.Threshold.TotalMilliseconds;
        var span = now - since;
        var done = completed - before;
        var estimate = span < threshold * 9 / 10 || pending == 0 ? 0 : done <= 0 ? span : pending * span / done;
        if (estimate < threshold)
        {
            _slowSince = 0;
            _estimatedMs = 0;
            return;
        }
        if (_slowSince == 0)
        {
            _slowSince = now;
        }
        _estimatedMs = now - _slowSince >= threshold / 2 ? estimate : 0;
    }

    /// <summary>
    /// How long queued work waits, measured from this thread: a probe work item, one at a time (its
    /// wait so far, or in all once it ran), or the stall (work queued, nothing completing) if longer,
    /// goes to <see cref="StarvationEpisodes"/>, which says when to tell the master.
    /// </summary>
    private void Probe(long now)
    {
        long waited;
        if (_probeQueuedAt == 0)
        {
            _probeRanAt = 0;
            _probeQueuedAt = now;
            ThreadPool.UnsafeQueueUserWorkItem(static guard =>
            {
                Interlocked.Increment(ref guard._probesRan);
                Volatile.Write(ref guard._probeRanAt, Environment.TickCount64);
            }, this, preferLocal: false);
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
        if (_episodes.Observe(Math.Max(waited, Math.Max(_stalledMs, _estimatedMs)), now) is { } delay)
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
