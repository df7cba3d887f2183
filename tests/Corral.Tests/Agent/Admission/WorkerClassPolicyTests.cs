using System.Text.Json;
using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Corral.Settings;

namespace Corral.Tests;

/// <summary>Each worker class's rules, read from the one table by the master and the agent.</summary>
public class WorkerClassPolicyTests
{
    [Fact]
    public void TheTableNamesEveryClassOnceAndIsWhatDashKAccepts()
    {
        Assert.Equal(["sync", "gthread", "async"], WorkerClassPolicy.All.Select(p => p.Name));
        Assert.Equal(Enum.GetValues<WorkerClass>(), WorkerClassPolicy.All.Select(p => p.Class).Order());
        Assert.Equal(WorkerClassPolicy.All.Select(p => p.Name), SettingsTable.WorkerClass.Choices);
        Assert.Equal("async", SettingsTable.WorkerClass.Default);
        foreach (var p in WorkerClassPolicy.All)
        {
            Assert.Same(p, WorkerClassPolicy.For(p.Class));
            Assert.Same(p, WorkerClassPolicy.Named(p.Name));
            Assert.Equal(p.Name, p.ToString()); // "Using worker: sync"
            // On the wire a class is its -k name: the master and a Native AOT app's own agent agree on it.
            Assert.Equal($"\"{p.Name}\"", JsonSerializer.Serialize(p.Class));
        }
        Assert.Null(WorkerClassPolicy.Named("gevent"));
    }

    [Theory]
    [InlineData("sync", 5, 3, 5, 1)]
    [InlineData("sync", 0, 3, 1, 1)]
    [InlineData("gthread", 1000, 8, 0, 8)]
    [InlineData("gthread", 1000, 0, 0, 1)]
    [InlineData("async", 1000, 8, 1000, 0)]
    [InlineData("async", -1, 8, 1, 0)]
    public void CapacitiesAreWhatTheGateAdmits(string name, int workerConnections, int threads, int connections, int requests)
    {
        var policy = WorkerClassPolicy.Named(name)!;
        Assert.Equal((connections, requests), policy.Capacities(workerConnections, threads));
        var gate = AdmissionGate.For(new AgentOptions { WorkerClass = policy.Class, WorkerConnections = workerConnections, Threads = threads });
        Assert.Equal(requests > 0, gate.LimitsRequests);
        Assert.Equal(policy.OneRequestAtATime, gate.OneRequestAtATime);
    }

    [Fact]
    public void OnlySyncRunsOneRequestAtATimeClosesConnectionsAndIsTimedOutPerRequest()
    {
        foreach (var p in WorkerClassPolicy.All)
        {
            var sync = p.Class == WorkerClass.Sync;
            Assert.Equal(sync, p.OneRequestAtATime);
            Assert.Equal(sync, p.ClosesEveryConnection);
            Assert.Equal(sync, p.TimeoutCoversRequests);
            Assert.Equal(p.Class == WorkerClass.Gthread, p.UsesThreads);
            Assert.Equal(p.Class == WorkerClass.Async, p.PacksAccepts);
        }
        Assert.Equal(ThreadPoolSizing.Runtime, WorkerClassPolicy.Sync.ThreadPool);
        Assert.Equal(ThreadPoolSizing.MinimumForThreads, WorkerClassPolicy.Gthread.ThreadPool);
        Assert.Equal(ThreadPoolSizing.StarvationGuard, WorkerClassPolicy.Async.ThreadPool);
        Assert.Equal(10, WorkerClassPolicy.MinimumThreads(8, 2));
        Assert.Equal(1002, WorkerClassPolicy.StarvationCap(1000, 2));
    }

    [Theory]
    [InlineData(1, "async")]
    [InlineData(2, "gthread")]
    [InlineData(64, "gthread")]
    public void ThreadsAboveOneWithoutDashKPickGthreadAsGunicornDoes(int threads, string expected)
    {
        Assert.Equal(expected, WorkerClassPolicy.ForUnnamed(threads).Name);
        var config = Settings.Ok("--threads", threads.ToString(System.Globalization.CultureInfo.InvariantCulture), "App.dll");
        Assert.Equal(expected, config.WorkerClass.Name);
        // Named, the class stays what it was named, whatever --threads says.
        Assert.Equal("sync", Settings.Ok("-k", "sync", "--threads", "4", "App.dll").WorkerClass.Name);
    }
}
