using System.Diagnostics;
using System.Net.Sockets;
using Corral.Agent.Os;

namespace Corral.Agent.Admission;

/// <summary>
/// --accept-policy pack (async workers): one worker, the leader, takes every new connection; the
/// others take one only when it has waited <see cref="AcceptPackingPolicy.Patience"/> in the
/// kernel's queue, which means the leader is saturated, paused (a GC, SIGSTOP) or gone. Two runtimes
/// busy at once on few cores serve less than one (bench/results/connection-split.md), and a second
/// worker that is not needed stays out of the way.
/// <para>
/// The leader is whoever holds an abstract unix socket name that the master made up for its workers:
/// only one process can bind it, and the kernel lets it go when that process exits. A worker leads
/// only while it is ready and not draining. The decisions are <see cref="AcceptPackingPolicy"/>'s.
/// </para>
/// </summary>
internal sealed class AcceptPacking
{
    private readonly string _name;
    private readonly AdmissionGate _gate;
    private readonly int _cap;
    private readonly Lock _sync = new();
    private Socket? _lead;

    /// <param name="cap">--pack-leader-connections: the open connections past which this worker does not lead (0: no cap).</param>
    public AcceptPacking(string name, AdmissionGate gate, int cap = 0)
    {
        _name = name;
        _gate = gate;
        _cap = cap;
        // A draining worker lets go once, whatever the number of listeners: another leads from its next accept.
        gate.OnUnbind(() =>
        {
            Resign();
            return ValueTask.CompletedTask;
        });
    }

    public bool Leading => Volatile.Read(ref _lead) is not null;

    /// <summary>Takes the lead if this worker may and no one has it; true if it leads now.</summary>
    public bool TryLead()
    {
        if (Leading)
        {
            if (!AcceptPackingPolicy.AtCap(_gate.OpenConnections, _cap))
            {
                return true;
            }
            // --pack-leader-connections: the next connections go to another worker, which may lead now.
            Resign();
            AgentRuntime.Log.Debug($"Worker holds {_gate.OpenConnections} connections (--pack-leader-connections {_cap}): another takes new connections first (pid: {Environment.ProcessId})");
            return false;
        }
        if (!AcceptPackingPolicy.MayLead(AgentRuntime.IsReady && !_gate.Spare, _gate.TakesNoConnections, _gate.OpenConnections, _cap))
        {
            return false;
        }
        lock (_sync)
        {
            if (_lead is not null || _gate.TakesNoConnections)
            {
                return _lead is not null;
            }
            Socket socket;
            try
            {
                socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            }
            catch (Exception e)
            {
                // Out of file descriptors (EMFILE): follow for now, lead once there are some again.
                Background.Report("Taking the lead (--accept-policy pack)", e);
                return false;
            }
            try
            {
                socket.Bind(new UnixDomainSocketEndPoint("\0" + _name));
            }
            catch (SocketException)
            {
                socket.Dispose();
                return false;
            }
            Volatile.Write(ref _lead, socket);
        }
        AgentRuntime.Log.Debug($"Worker takes new connections first (pid: {Environment.ProcessId})");
        return true;
    }

    /// <summary>
    /// True while another worker holds the leader's name (this one does not: it calls this only as a
    /// follower). Found by trying to bind it: a name that binds is let go of at once. False when no
    /// socket can be made (out of file descriptors): then the short patience applies.
    /// </summary>
    private bool AnotherLeads()
    {
        Socket socket;
        try
        {
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        }
        catch (SocketException)
        {
            return false;
        }
        using (socket)
        {
            try
            {
                socket.Bind(new UnixDomainSocketEndPoint("\0" + _name));
                return false;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }
    }

    private void Resign()
    {
        lock (_sync)
        {
            _lead?.Dispose();
            Volatile.Write(ref _lead, null);
        }
    }

    /// <summary>
    /// Returns at once for the leader. A follower waits, on a thread of its own (poll(2) blocks), until
    /// a connection has waited <see cref="AcceptPackingPolicy.Patience"/> on <paramref name="listenFd"/>, or until it leads.
    /// </summary>
    public ValueTask WaitTurnAsync(int listenFd, CancellationToken ct)
    {
        if (TryLead())
        {
            return ValueTask.CompletedTask;
        }
        try
        {
            return new ValueTask(Task.Factory.StartNew(() => WaitTurn(listenFd, ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default));
        }
        catch (TaskSchedulerException e)
        {
            // The runtime could not start the thread (out of file descriptors, it cannot): thrown
            // to Kestrel, this would end the worker's accept loop for good. Look again in a moment.
            Background.Report("Waiting for a turn to accept (--accept-policy pack)", e);
            return new ValueTask(Task.Delay(AcceptPackingPolicy.LookAgain, ct));
        }
    }

    private void WaitTurn(int listenFd, CancellationToken ct)
    {
        var policy = new AcceptPackingPolicy();
        var start = Stopwatch.GetTimestamp();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (TryLead())
            {
                return;
            }
            var queued = Native.WaitReadable(listenFd, (int)policy.NextLook.TotalMilliseconds);
            var atCap = queued && AcceptPackingPolicy.AtCap(_gate.OpenConnections, _cap);
            if (policy.ShouldAccept(queued, Stopwatch.GetElapsedTime(start), AcceptPackingPolicy.PatienceFor(atCap, atCap && AnotherLeads())))
            {
                return; // never empty for that long: the leader is not keeping up
            }
            if (queued)
            {
                Thread.Sleep(AcceptPackingPolicy.Pace);
            }
        }
    }
}
