using System.Buffers;
using System.Text;
using Corral.Agent.Admission;
using Corral.Agent.Contract;

namespace Corral.Tests;

/// <summary>The sync worker's turn: who holds it, and what an accept waiting for it sees.</summary>
public class AdmissionGateTests
{
    private static AdmissionGate Sync() => AdmissionGate.For(new AgentOptions { WorkerClass = WorkerClass.Sync, WorkerConnections = 5 });

    [Fact]
    public async Task An_idle_sync_worker_has_its_turn_and_a_request_takes_it_until_it_ends()
    {
        var gate = Sync();
        Assert.True(gate.OneRequestAtATime);
        var turnTaken = await gate.WaitForTurnAsync(CancellationToken.None);
        Assert.True(turnTaken.CanBeCanceled);
        Assert.False(turnTaken.IsCancellationRequested);

        await gate.EnterRequestAsync();
        Assert.True(turnTaken.IsCancellationRequested); // an accept waiting in accept(2) gives up
        var waiting = gate.WaitForTurnAsync(CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);

        gate.ExitRequest();
        var again = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(again.IsCancellationRequested);
    }

    [Fact]
    public async Task Requests_run_one_at_a_time_and_a_waiting_one_keeps_the_turn()
    {
        var gate = Sync();
        await gate.EnterRequestAsync();
        var second = gate.EnterRequestAsync().AsTask();
        await Task.Delay(50);
        Assert.False(second.IsCompleted);

        gate.ExitRequest();
        await second.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(gate.HasTurn);
        gate.ExitRequest();
        Assert.True(gate.HasTurn);
    }

    [Fact]
    public async Task Every_holder_must_give_the_turn_back()
    {
        var gate = Sync();
        gate.TakeTurn();
        gate.TakeTurn();
        gate.GiveTurnBack();
        Assert.False(gate.HasTurn);
        var waiting = gate.WaitForTurnAsync(CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        gate.GiveTurnBack();
        await waiting.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Other_classes_never_wait_for_a_turn()
    {
        foreach (var workerClass in new[] { WorkerClass.Gthread, WorkerClass.Async })
        {
            var gate = AdmissionGate.For(new AgentOptions { WorkerClass = workerClass, Threads = 2 });
            Assert.False(gate.OneRequestAtATime);
            var token = await gate.WaitForTurnAsync(CancellationToken.None);
            Assert.False(token.CanBeCanceled);
        }
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n", true)]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody", true)]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", true)]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n", false)]
    [InlineData("GET / HT", false)]
    [InlineData("", false)]
    public void A_whole_head_ends_with_an_empty_line(string bytes, bool whole)
    {
        Assert.Equal(whole, HeadTurn.HoldsWholeHead(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(bytes))));
    }

    [Fact]
    public void The_empty_line_is_found_across_segments()
    {
        var text = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        // Split between the two CRLFs of the end, as a pipe's segments may be.
        var first = new Segment(text.AsMemory(0, text.Length - 3));
        var last = first.Append(text.AsMemory(text.Length - 3));
        Assert.True(HeadTurn.HoldsWholeHead(new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length)));
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
