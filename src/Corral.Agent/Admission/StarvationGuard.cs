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
            }
            catch (Exception e)
            {
                // An exception on this thread of its own would end the process.
                Background.Report("Thread-pool starvation guard", e);
            }
        }
    }
}
