using Corral.Agent.Contract;

namespace Corral.Agent.Admission;

/// <summary>How a worker class sizes the thread pool.</summary>
public enum ThreadPoolSizing
{
    /// <summary>As the runtime does: one request at a time needs no more.</summary>
    Runtime,

    /// <summary>The pool's minimum raised to --threads (plus the cores) at start: N blocking handlers at once from the first request.</summary>
    MinimumForThreads,

    /// <summary>The minimum raised only while the pool is seen starving (<see cref="StarvationGuard"/>).</summary>
    StarvationGuard,
}

/// <summary>
/// The one home of each worker class's rules, read by the master and the agent alike (Gunicorn keeps a
/// name-to-class table in gunicorn/workers/__init__.py and one class per file; Corral's classes are
/// capacities on one <see cref="AdmissionGate"/>, so a class is a row of this table, not a subclass).
/// </summary>
public sealed record WorkerClassPolicy
{
    public required WorkerClass Class { get; init; }

    /// <summary>The -k name: sync, gthread, async.</summary>
    public required string Name { get; init; }

    /// <summary>One request at a time; new connections only while the worker has its turn (<see cref="AdmissionGate"/>).</summary>
    public bool OneRequestAtATime { get; init; }

    /// <summary>Every HTTP/1.x response closes its connection (Gunicorn's sync worker: no keep-alive).</summary>
    public bool ClosesEveryConnection { get; init; }

    /// <summary>Runs --threads requests at once: --threads means something to it.</summary>
    public bool UsesThreads { get; init; }

    /// <summary>
    /// The master times out a request that runs longer than --timeout, not only a silent worker: Gunicorn's
    /// sync worker cannot heartbeat while a request runs (the agent reports how long it has been busy).
    /// </summary>
    public bool TimeoutCoversRequests { get; init; }

    /// <summary>--accept-policy pack applies: one worker leads the accepts (sync and gthread accept only with a free slot).</summary>
    public bool PacksAccepts { get; init; }

    public ThreadPoolSizing ThreadPool { get; init; }

    public static readonly WorkerClassPolicy Sync = new()
    {
        Class = WorkerClass.Sync,
        Name = "sync",
        OneRequestAtATime = true,
        ClosesEveryConnection = true,
        TimeoutCoversRequests = true,
        ThreadPool = ThreadPoolSizing.Runtime,
    };

    public static readonly WorkerClassPolicy Gthread = new()
    {
        Class = WorkerClass.Gthread,
        Name = "gthread",
        UsesThreads = true,
        ThreadPool = ThreadPoolSizing.MinimumForThreads,
    };

    public static readonly WorkerClassPolicy Async = new()
    {
        Class = WorkerClass.Async,
        Name = "async",
        PacksAccepts = true,
        ThreadPool = ThreadPoolSizing.StarvationGuard,
    };

    /// <summary>Every class, in the order -k --help lists them.</summary>
    public static readonly IReadOnlyList<WorkerClassPolicy> All = [Sync, Gthread, Async];

    /// <summary>The class a master uses when none is named: async (ASP.NET Core apps are asynchronous).</summary>
    public static readonly WorkerClassPolicy Default = Async;

    public static WorkerClassPolicy For(WorkerClass c) => c switch
    {
        WorkerClass.Sync => Sync,
        WorkerClass.Gthread => Gthread,
        _ => Async,
    };

    /// <summary>The class named <paramref name="name"/> (-k), or null.</summary>
    public static WorkerClassPolicy? Named(string name) => All.FirstOrDefault(p => p.Name == name);

    /// <summary>Gunicorn's rule: --threads above 1 without -k picks the threaded class.</summary>
    public static WorkerClassPolicy ForUnnamed(int threads) => threads > 1 ? Gthread : Default;

    /// <summary>
    /// What the <see cref="AdmissionGate"/> admits: connections held at once (0: no count of its own)
    /// and requests run at once (0: no limit).
    /// </summary>
    public (int Connections, int Requests) Capacities(int workerConnections, int threads) => Class switch
    {
        WorkerClass.Sync => (Math.Max(1, workerConnections), 1),
        WorkerClass.Gthread => (0, Math.Max(1, threads)),
        _ => (Math.Max(1, workerConnections), 0),
    };

    /// <summary>The thread pool's minimum for <see cref="ThreadPoolSizing.MinimumForThreads"/>: the handlers plus the cores' own work.</summary>
    public static int MinimumThreads(int threads, int processorCount) => threads + processorCount;

    /// <summary>The most the <see cref="StarvationGuard"/> raises the pool's minimum to.</summary>
    public static int StarvationCap(int workerConnections, int processorCount) => workerConnections + processorCount;

    public override string ToString() => Name;
}
