namespace Corral.Agent;

/// <summary>
/// For the async class: blocking handlers (the seed's Thread.Sleep) must run at once, yet a thread
/// pool pre-sized to hundreds of threads costs throughput on fast handlers (threads injected under
/// load, then context switches). Instead this watches from its own thread (the pool may be the thing
/// that is stuck) and raises the pool's minimum only when work is queued and nothing completes:
/// the pool's threads are blocked. Fast handlers keep completing, so they never trigger it.
/// </summary>
internal sealed class StarvationGuard
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(25);
    private readonly int _cap;

    private StarvationGuard(int cap) => _cap = cap;

    public static void Start(int cap)
    {
        var guard = new StarvationGuard(cap);
        new Thread(guard.Run) { IsBackground = true, Name = "corral-starvation-guard" }.Start();
    }

    private void Run()
    {
        var lastCompleted = ThreadPool.CompletedWorkItemCount;
        while (true)
        {
            Thread.Sleep(Interval);
            var completed = ThreadPool.CompletedWorkItemCount;
            var pending = ThreadPool.PendingWorkItemCount;
            if (pending > 0 && completed == lastCompleted)
            {
                ThreadPool.GetMinThreads(out var workers, out var io);
                var wanted = (int)Math.Min(_cap, ThreadPool.ThreadCount + pending);
                if (wanted > workers)
                {
                    ThreadPool.SetMinThreads(wanted, io);
                }
            }
            lastCompleted = completed;
        }
    }
}
