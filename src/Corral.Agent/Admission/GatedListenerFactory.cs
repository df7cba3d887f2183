using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Corral.Agent.Admission;

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
        if (Http.Affinity.AffinityListener.IsPrivate(endpoint))
        {
            return await inner.BindAsync(endpoint, cancellationToken).ConfigureAwait(false); // other workers' forwards: admitted there
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
        private readonly CancellationTokenSource _unbound = new();

        public EndPoint EndPoint => inner.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            // Unbound (Kestrel stops): an accept still waiting for the gate ends at once.
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, gate.DrainToken, gate.AcceptsStoppedToken, _unbound.Token);
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
                connection = packing is not null ? await AcceptPackedAsync(packing, linked.Token).ConfigureAwait(false)
                    : gate.OneRequestAtATime ? await AcceptInTurnAsync(linked.Token).ConfigureAwait(false)
                    : await inner.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when ((packing is not null || gate.OneRequestAtATime) && linked.IsCancellationRequested)
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
            if (gate.OneRequestAtATime)
            {
                HeadTurn.Begin(connection, gate);
            }
            return connection;
        }

        /// <summary>sync: accepts only while the worker has its turn; gives up the accept when a request takes it meanwhile.</summary>
        private async ValueTask<ConnectionContext?> AcceptInTurnAsync(CancellationToken ct)
        {
            while (true)
            {
                var turnTaken = await gate.WaitForTurnAsync(ct).ConfigureAwait(false);
                using var accept = CancellationTokenSource.CreateLinkedTokenSource(ct, turnTaken);
                try
                {
                    return await inner.AcceptAsync(accept.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    // a held connection's request began here: wait for it to end
                }
            }
        }

        /// <summary>
        /// A follower accepts only the connection it was told waits too long, and gives up within
        /// <see cref="AcceptPackingPolicy.Reach"/> if the leader took it after all: a follower left
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
                reach.CancelAfter(AcceptPackingPolicy.Reach);
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

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _unbound.Cancel();
            return inner.UnbindAsync(cancellationToken);
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
