using Corral.Agent.Admission;
using Corral.Agent.Contract;

namespace Corral.Tests;

/// <summary>A worker above --max-worker-memory takes no new connection at once, but is not draining yet.</summary>
public class StopAcceptingTests
{
    [Fact]
    public async Task Stop_accepting_unbinds_and_ends_waiting_accepts_once_without_draining()
    {
        var gate = AdmissionGate.For(new AgentOptions { WorkerClass = WorkerClass.Async, WorkerConnections = 1 });
        var unbinds = 0;
        gate.OnUnbind(() =>
        {
            unbinds++;
            return ValueTask.CompletedTask;
        });
        await gate.AcquireConnectionAsync(CancellationToken.None); // the one slot: the next accept waits
        var waiting = gate.AcquireConnectionAsync(gate.AcceptsStoppedToken).AsTask();
        Assert.False(waiting.IsCompleted);

        Assert.True(gate.StopAccepting());

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(1, unbinds);
        Assert.True(gate.AcceptsStopped);
        Assert.True(gate.TakesNoConnections);
        Assert.False(gate.Draining); // keep-alive connections are still served as usual
        Assert.False(gate.StopAccepting());

        // The drain that follows does not unbind again.
        _ = gate.BeginDrainAsync();
        Assert.True(gate.Draining);
        Assert.Equal(1, unbinds);
    }
}
