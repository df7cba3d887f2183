using Corral.Agent.Contract;
using Corral.Agent.Os;
using Microsoft.AspNetCore.Http;

namespace Corral.Agent.Admission;

/// <summary>
/// Decides when a worker may take the next connection off the shared listening socket. A worker that
/// may not take one simply does not call accept(2): the connection waits in the kernel's queue for an
/// idle worker, which is what makes sync workers send every connection to a free worker and lets
/// draining workers lose nothing.
/// <para>
/// A sync worker runs one request at a time, and takes a new connection only while it has its
/// <em>turn</em>: no request runs or waits in it, and no new connection's request head is on its way.
/// A connection whose head does not come (a slow or idle client) gives the turn back
/// (<see cref="HeadTurn"/>) and is held aside, at most --worker-connections of them, until its head
/// arrives (its request then waits for the turn) or Kestrel's timeouts close it. So slow clients
/// cannot take the worker, and a busy worker still leaves new connections to its neighbours.
/// </para>
/// </summary>
public sealed class AdmissionGate
{
    /// <summary>
    /// sync: how long a new connection that has sent nothing keeps the worker's turn. A client's
    /// request follows its handshake at once, so a normal request has arrived well within it; a
    /// connection whose first bytes are not a whole request head gives the turn back at once.
    /// </summary>
    public static readonly TimeSpan FirstBytesWait = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// sync: the longest a new connection keeps the turn while its bytes wait to be read, or its whole
    /// head waits for its request to start (both quick, unless the machine is very busy).
    /// </summary>
    public static readonly TimeSpan HeadParseWait = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim? _connections;
    private readonly SemaphoreSlim? _requests;
    private TaskCompletionSource _requestSlotFreed = NewSignal();
    private readonly bool _oneAtATime;
    private readonly Lock _turnLock = new();
    private int _turnHolders;
    private TaskCompletionSource _turnFree = NewSignal();
    private CancellationTokenSource _turnTaken = new();
    private readonly CancellationTokenSource _drain = new();
    private readonly CancellationTokenSource _acceptsStopped = new();
    private readonly TaskCompletionSource _noConnections = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<Func<ValueTask>> _unbinders = [];
    private int _openConnections;
    private volatile TaskCompletionSource? _held;
    private readonly int _connectionCapacity;
    private int _descriptorCap = int.MaxValue;
    private int _descriptorLimit;
    private int _waitingForClose;
    private TaskCompletionSource _connectionClosed = NewSignal();

    private AdmissionGate(int connectionCapacity, int requestCapacity, bool oneAtATime = false)
    {
        _oneAtATime = oneAtATime;
        _connectionCapacity = connectionCapacity;
        if (connectionCapacity > 0)
        {
            _connections = new SemaphoreSlim(connectionCapacity, connectionCapacity);
        }
        if (requestCapacity > 0)
        {
            _requests = new SemaphoreSlim(requestCapacity, requestCapacity);
        }
    }

    /// <summary>
    /// sync: one request at a time, and no accept unless the worker has its turn; up to
    /// --worker-connections connections held while their heads arrive. gthread: N requests at once,
    /// and no accept while all N run. async: up to --worker-connections connections.
    /// </summary>
    public static AdmissionGate For(AgentOptions o)
    {
        var policy = WorkerClassPolicy.For(o.WorkerClass);
        var (connections, requests) = policy.Capacities(o.WorkerConnections, o.Threads);
        return new AdmissionGate(connections, requests, policy.OneRequestAtATime);
    }

    public bool LimitsRequests => _requests is not null;

    /// <summary>The sync class: one request at a time, and new connections only with the worker's turn.</summary>
    public bool OneRequestAtATime => _oneAtATime;

    /// <summary>Set once the worker drains: it takes no new connection and closes each one after its current request.</summary>
    public bool Draining => _drain.IsCancellationRequested;

    public int OpenConnections => Volatile.Read(ref _openConnections);

    /// <summary>
    /// Stop taking connections: pending accepts end (this worker's copies of the listening sockets
    /// are closed; the master's, and so the kernel queue, stay), and the returned task completes once
    /// every open connection has closed.
    /// </summary>
    public Task BeginDrainAsync()
    {
        if (!Draining)
        {
            _drain.Cancel();
            if (!AcceptsStopped)
            {
                Unbind();
            }
            if (OpenConnections == 0)
            {
                _noConnections.TrySetResult();
            }
        }
        return _noConnections.Task;
    }

    /// <summary>Set once the worker takes no new connection (<see cref="StopAccepting"/>), though it still serves the ones it has.</summary>
    public bool AcceptsStopped => _acceptsStopped.IsCancellationRequested;

    /// <summary>Draining, or no longer accepting: this worker takes no new connection.</summary>
    public bool TakesNoConnections => Draining || AcceptsStopped;

    internal CancellationToken AcceptsStoppedToken => _acceptsStopped.Token;

    /// <summary>
    /// Takes no new connection from now on, as a drain does (pending accepts end, this worker's copies of
    /// the listening sockets close, the kernel queue stays for the other workers), but goes on serving
    /// the connections it has, keep-alive included, until it drains: a worker above --max-worker-memory
    /// while its successor boots. False if it had already stopped.
    /// </summary>
    public bool StopAccepting()
    {
        if (TakesNoConnections)
        {
            return false;
        }
        _acceptsStopped.Cancel();
        Unbind();
        return true;
    }

    private void Unbind()
    {
        List<Func<ValueTask>> unbinders;
        lock (_unbinders)
        {
            unbinders = [.. _unbinders];
        }
        foreach (var unbind in unbinders)
        {
            _ = unbind().AsTask();
        }
    }

    internal void OnUnbind(Func<ValueTask> unbind)
    {
        lock (_unbinders)
        {
            _unbinders.Add(unbind);
        }
    }

    internal void ConnectionOpened() => Interlocked.Increment(ref _openConnections);

    internal void ConnectionClosed()
    {
        if (Interlocked.Decrement(ref _openConnections) == 0 && Draining)
        {
            _noConnections.TrySetResult();
        }
        if (Volatile.Read(ref _waitingForClose) != 0 && Interlocked.Exchange(ref _waitingForClose, 0) != 0)
        {
            Interlocked.Exchange(ref _connectionClosed, NewSignal()).TrySetResult();
        }
        ReleaseConnection();
    }

    /// <summary>
    /// At most this many connections open at once, whatever the class allows, so that the worker
    /// never runs out of file descriptors (<see cref="LimitToDescriptors"/>); int.MaxValue until then.
    /// </summary>
    public int DescriptorCap => Volatile.Read(ref _descriptorCap);

    /// <summary>
    /// Caps the connections at what the descriptors left allow (<see cref="Descriptors.ConnectionCap"/>),
    /// counted once the worker is about to listen (most of the assemblies it needs are loaded then).
    /// Out of descriptors, the runtime could not start a thread, and its thread pool would end the
    /// worker; at the cap, connections wait in the listening socket's queue, for this worker or another.
    /// </summary>
    internal void LimitToDescriptors()
    {
        if (Descriptors.Limit() is { } limit && Descriptors.InUse() is { } inUse)
        {
            var cap = Descriptors.ConnectionCap(limit, inUse);
            SetDescriptorCap(cap, limit);
            if (cap >= (_connectionCapacity > 0 ? _connectionCapacity : 1000))
            {
                return; // not what limits this worker (gthread: no count of its own)
            }
            AgentRuntime.Log.Debug($"File descriptors: {limit} allowed, {inUse} open: this worker holds at most {DescriptorCap} connections at once (pid: {Environment.ProcessId})");
        }
    }

    internal void SetDescriptorCap(int cap, int limit)
    {
        _descriptorLimit = limit;
        Volatile.Write(ref _descriptorCap, cap);
    }

    internal CancellationToken DrainToken => _drain.Token;

    /// <summary>
    /// While a warm-up runs: accepts that start now wait (one already waiting in accept(2) may still
    /// take a connection), so new connections go to the workers that are ready.
    /// </summary>
    internal void HoldAccepts() => _held = NewSignal();

    internal void ReleaseAccepts() => Interlocked.Exchange(ref _held, null)?.TrySetResult();

    /// <summary>While accepts are held (a warm-up runs): completes when they are released; null otherwise.</summary>
    internal Task? AcceptsHeld => _held?.Task;

    private Task? _spare;

    /// <summary>
    /// --spare-workers: this worker is a spare. It takes no connection (no accept starts, so none waits in
    /// accept(2), and under --accept-policy pack it neither leads nor takes overflow) until
    /// <paramref name="promoted"/> completes: the master's SIGUSR2. Called before Kestrel listens.
    /// </summary>
    internal void HoldUntilPromoted(Task promoted) => _spare = promoted.IsCompleted ? null : promoted;

    /// <summary>A spare that has not been promoted yet: it takes no connection.</summary>
    public bool Spare => _spare is { IsCompleted: false };

    /// <summary>Waits until this worker may accept one more connection; the slot is held until <see cref="ReleaseConnection"/>.</summary>
    public async ValueTask AcquireConnectionAsync(CancellationToken ct)
    {
        if (_spare is { IsCompleted: false } spare)
        {
            await spare.WaitAsync(ct).ConfigureAwait(false);
        }
        if (_held is { } held)
        {
            await held.Task.WaitAsync(ct).ConfigureAwait(false);
        }
        if (_connections is not null)
        {
            await _connections.WaitAsync(ct).ConfigureAwait(false);
        }
        while (_requests is not null && !_oneAtATime && _requests.CurrentCount == 0)
        {
            var signal = Volatile.Read(ref _requestSlotFreed);
            if (_requests.CurrentCount > 0)
            {
                break;
            }
            await signal.Task.WaitAsync(ct).ConfigureAwait(false);
        }
        while (OpenConnections >= DescriptorCap)
        {
            // Interlocked (a full fence) before the count is read again: a close either sees the
            // flag or has already lowered the count.
            Interlocked.Exchange(ref _waitingForClose, 1);
            var closed = Volatile.Read(ref _connectionClosed);
            if (OpenConnections < DescriptorCap)
            {
                break;
            }
            Background.Warn("descriptor cap", $"Worker at its file descriptor limit (ulimit -n {_descriptorLimit}): {OpenConnections} connections open, more wait in the listening queue (pid: {Environment.ProcessId}). Raise the limit (ulimit -n, systemd's LimitNOFILE=). Logged at most once a minute.");
            try
            {
                await closed.Task.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                ReleaseConnection(); // the class's slot, taken above
                throw;
            }
        }
    }

    public void ReleaseConnection() => _connections?.Release();

    /// <summary>
    /// Waits for a request slot. sync: the request holds the worker's turn from now (waiting
    /// included) until <see cref="ExitRequest"/>, and its connection's <see cref="HeadTurn"/> is
    /// handed over.
    /// </summary>
    public ValueTask EnterRequestAsync(HttpContext? context = null)
    {
        if (_requests is null)
        {
            return ValueTask.CompletedTask;
        }
        if (_oneAtATime)
        {
            TakeTurn();
            context?.Features.Get<HeadTurn>()?.Release();
        }
        return _requests.Wait(0) ? ValueTask.CompletedTask : new ValueTask(_requests.WaitAsync());
    }

    public void ExitRequest()
    {
        if (_requests is null)
        {
            return;
        }
        _requests.Release();
        if (_oneAtATime)
        {
            GiveTurnBack();
        }
        else if (_requests.CurrentCount == 1) // from full to one free: wake the accept loop
        {
            Interlocked.Exchange(ref _requestSlotFreed, NewSignal()).TrySetResult();
        }
    }

    /// <summary>
    /// sync: waits until the worker has its turn (and accepts are not held by a warm-up). The token
    /// returned is cancelled as soon as the turn is taken, by a held connection whose request head
    /// arrives meanwhile: then the accept waiting in accept(2) stops, and the neighbours take the new
    /// connections while that request runs. Other classes: at once, with a token that never fires.
    /// </summary>
    public async ValueTask<CancellationToken> WaitForTurnAsync(CancellationToken ct)
    {
        if (!_oneAtATime)
        {
            return CancellationToken.None;
        }
        while (true)
        {
            if (_held is { } held)
            {
                await held.Task.WaitAsync(ct).ConfigureAwait(false);
            }
            Task free;
            lock (_turnLock)
            {
                if (_turnHolders == 0)
                {
                    return _turnTaken.Token;
                }
                free = _turnFree.Task;
            }
            await free.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>sync: true while no request runs or waits and no new connection's head is awaited.</summary>
    public bool HasTurn
    {
        get
        {
            lock (_turnLock)
            {
                return _turnHolders == 0;
            }
        }
    }

    /// <summary>sync: a request, or a new connection whose head is awaited, holds the worker's turn (counted: several may).</summary>
    public void TakeTurn()
    {
        CancellationTokenSource? taken = null;
        lock (_turnLock)
        {
            if (_turnHolders++ == 0)
            {
                taken = _turnTaken;
            }
        }
        taken?.Cancel();
    }

    public void GiveTurnBack()
    {
        TaskCompletionSource? free = null;
        lock (_turnLock)
        {
            if (--_turnHolders == 0)
            {
                _turnTaken = new CancellationTokenSource();
                free = _turnFree;
                _turnFree = NewSignal();
            }
        }
        free?.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
