using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Corral.Agent;

/// <summary>
/// Decides when a worker may take the next connection off the shared listening socket. A worker that
/// may not take one simply does not call accept(2): the connection waits in the kernel's queue for an
/// idle worker, which is what makes sync workers send every connection to a free worker and lets
/// draining workers lose nothing.
/// </summary>
public sealed class AdmissionGate
{
    private readonly SemaphoreSlim? _connections;
    private readonly SemaphoreSlim? _requests;
    private TaskCompletionSource _requestSlotFreed = NewSignal();
    private readonly CancellationTokenSource _drain = new();
    private readonly TaskCompletionSource _noConnections = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<Func<ValueTask>> _unbinders = [];
    private int _openConnections;
    private volatile TaskCompletionSource? _held;
    private readonly int _connectionCapacity;
    private int _descriptorCap = int.MaxValue;
    private int _descriptorLimit;
    private int _waitingForClose;
    private TaskCompletionSource _connectionClosed = NewSignal();

    private AdmissionGate(int connectionCapacity, int requestCapacity)
    {
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
    /// sync: one connection at a time (and one request on it). gthread: N requests at once, and no
    /// accept while all N run. async: up to --worker-connections connections.
    /// </summary>
    public static AdmissionGate For(AgentOptions o) => o.WorkerClass switch
    {
        "sync" => new AdmissionGate(connectionCapacity: 1, requestCapacity: 0),
        "gthread" => new AdmissionGate(connectionCapacity: 0, requestCapacity: Math.Max(1, o.Threads)),
        _ => new AdmissionGate(connectionCapacity: Math.Max(1, o.WorkerConnections), requestCapacity: 0),
    };

    public bool LimitsRequests => _requests is not null;

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
            List<Func<ValueTask>> unbinders;
            lock (_unbinders)
            {
                unbinders = [.. _unbinders];
            }
            foreach (var unbind in unbinders)
            {
                _ = unbind().AsTask();
            }
            if (OpenConnections == 0)
            {
                _noConnections.TrySetResult();
            }
        }
        return _noConnections.Task;
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

    /// <summary>Waits until this worker may accept one more connection; the slot is held until <see cref="ReleaseConnection"/>.</summary>
    public async ValueTask AcquireConnectionAsync(CancellationToken ct)
    {
        if (_held is { } held)
        {
            await held.Task.WaitAsync(ct).ConfigureAwait(false);
        }
        if (_connections is not null)
        {
            await _connections.WaitAsync(ct).ConfigureAwait(false);
        }
        while (_requests is not null && _requests.CurrentCount == 0)
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

    public ValueTask EnterRequestAsync()
    {
        if (_requests is null)
        {
            return ValueTask.CompletedTask;
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
        if (_requests.CurrentCount == 1) // from full to one free: wake the accept loop
        {
            Interlocked.Exchange(ref _requestSlotFreed, NewSignal()).TrySetResult();
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>Kestrel's socket transport, with accept(2) held back by the <see cref="AdmissionGate"/>.</summary>
internal sealed class GatedListenerFactory(SocketTransportFactory inner, AdmissionGate gate, Warmup? warmup, AcceptPacking? packing)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private int _limited;

    public bool CanBind(EndPoint endpoint) => true;

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (warmup is not null && endpoint == warmup.Endpoint)
        {
            return warmup.Listen();
        }
        var listener = await inner.BindAsync(endpoint, cancellationToken).ConfigureAwait(false);
        if (Interlocked.Exchange(ref _limited, 1) == 0)
        {
            gate.LimitToDescriptors();
        }
        gate.OnUnbind(() => listener.UnbindAsync());
        // The master's sockets only (corral binds nothing itself): their descriptors are polled.
        var fd = endpoint is FileHandleEndPoint handle ? (int)handle.FileHandle : -1;
        return new GatedListener(listener, gate, fd >= 0 ? packing : null, fd);
    }

    private sealed class GatedListener(IConnectionListener inner, AdmissionGate gate, AcceptPacking? packing, int fd) : IConnectionListener
    {
        public EndPoint EndPoint => inner.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, gate.DrainToken);
            try
            {
                await gate.AcquireConnectionAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return null; // draining or stopping: Kestrel ends this listener's accept loop
            }
            ConnectionContext? connection;
            try
            {
                connection = packing is null
                    ? await inner.AcceptAsync(cancellationToken).ConfigureAwait(false)
                    : await AcceptPackedAsync(packing, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (packing is not null && linked.IsCancellationRequested)
            {
                gate.ReleaseConnection();
                return null; // draining or stopping
            }
            catch
            {
                gate.ReleaseConnection();
                throw;
            }
            if (connection is null)
            {
                gate.ReleaseConnection();
                return null;
            }
            gate.ConnectionOpened();
            connection.ConnectionClosed.Register(static g => ((AdmissionGate)g!).ConnectionClosed(), gate);
            return connection;
        }

        /// <summary>
        /// A follower accepts only the connection it was told waits too long, and gives up within
        /// <see cref="AcceptPacking.Reach"/> if the leader took it after all: a follower left
        /// waiting in accept(2) would take the next connection as soon as the leader would.
        /// </summary>
        private async ValueTask<ConnectionContext?> AcceptPackedAsync(AcceptPacking packing, CancellationToken ct)
        {
            while (true)
            {
                await packing.WaitTurnAsync(fd, ct).ConfigureAwait(false);
                if (packing.Leading)
                {
                    return await inner.AcceptAsync(ct).ConfigureAwait(false);
                }
                using var reach = CancellationTokenSource.CreateLinkedTokenSource(ct);
                reach.CancelAfter(AcceptPacking.Reach);
                try
                {
                    return await inner.AcceptAsync(reach.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    // the leader took it: wait for the next turn
                }
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => inner.UnbindAsync(cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
