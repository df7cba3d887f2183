namespace Corral.Agent.Admission;

/// <summary>
/// The decisions of --accept-policy pack (<see cref="AcceptPacking"/>), apart from the clock, poll(2)
/// and the leader's socket so that they can be tested: who may lead, how long a follower's next look
/// at the listening socket's queue may wait, and when a follower takes a connection. One instance
/// per wait for a turn (a follower's wait starts afresh at each accept).
/// </summary>
internal sealed class AcceptPackingPolicy
{
    /// <summary>
    /// How long the queue must stay non-empty before a follower takes a connection. A burst of new
    /// connections (a client opening its pool) takes the leader a few milliseconds to accept: a
    /// follower must not step in then, as even one connection on a second runtime costs a third of
    /// the throughput on 2 cores (bench/results/connection-split.md).
    /// </summary>
    public static readonly TimeSpan Patience = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// --pack-leader-connections: how long the queue must stay non-empty before a worker at its cap
    /// takes a connection while another worker leads. The new leader may be slow to get a core on a
    /// busy machine; with <see cref="Patience"/> the worker that just handed the lead on would take
    /// the next connections itself, past its cap. Long enough for a busy leader, short enough for one
    /// that is paused or dead; with no leader (every worker at its cap) <see cref="Patience"/> applies.
    /// </summary>
    public static readonly TimeSpan PatienceAtCap = TimeSpan.FromMilliseconds(100);

    /// <summary>How long a follower that stepped in waits for a connection before it leaves it to the leader again.</summary>
    public static readonly TimeSpan Reach = TimeSpan.FromMilliseconds(5);

    /// <summary>How often a waiting follower checks whether it may lead (the leader left), while no connection waits.</summary>
    public static readonly TimeSpan LookAgain = TimeSpan.FromMilliseconds(100);

    /// <summary>While a connection waits: is the leader emptying the queue? A follower looks this often.</summary>
    public static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(1);

    private TimeSpan? _queuedSince;

    /// <summary>A worker leads only while it is ready and not draining (then it tries for the leader's name).</summary>
    public static bool MayLead(bool ready, bool draining) => ready && !draining;

    /// <summary>
    /// --pack-leader-connections: a worker that holds <paramref name="cap"/> open connections or more
    /// does not lead (a leader lets go of the name before its next accept), so that another worker takes
    /// the next ones and a worker that dies takes at most about <paramref name="cap"/> with it. 0: no cap.
    /// Past the cap, a worker still takes a connection as a follower does (one that waited <see cref="PatienceFor"/>).
    /// </summary>
    public static bool MayLead(bool ready, bool draining, int openConnections, int cap) =>
        MayLead(ready, draining) && !AtCap(openConnections, cap);

    /// <summary>True when a leader holding <paramref name="openConnections"/> must let another lead (--pack-leader-connections).</summary>
    public static bool AtCap(int openConnections, int cap) => cap > 0 && openConnections >= cap;

    /// <summary>
    /// How long the follower's next look may wait for a connection to arrive: <see cref="LookAgain"/>
    /// while the queue was last seen empty; not at all while a connection waits (looked at every <see cref="Pace"/>).
    /// </summary>
    public TimeSpan NextLook => _queuedSince is null ? LookAgain : TimeSpan.Zero;

    /// <summary>
    /// How long a connection must wait before this follower takes it: <see cref="PatienceAtCap"/> for
    /// a worker at its --pack-leader-connections cap while another worker leads, else <see cref="Patience"/>.
    /// </summary>
    public static TimeSpan PatienceFor(bool atCap, bool anotherLeads) => atCap && anotherLeads ? PatienceAtCap : Patience;

    /// <summary>
    /// One look at the queue, at <paramref name="now"/> (any monotonic clock): true once it has been
    /// seen non-empty at every look for <paramref name="patience"/> (<see cref="Patience"/> unless
    /// given: <see cref="PatienceFor"/>), which means the leader is not keeping up (saturated, paused,
    /// gone): the follower takes a connection. A look that finds it empty starts the count again.
    /// </summary>
    public bool ShouldAccept(bool queued, TimeSpan now, TimeSpan? patience = null)
    {
        if (!queued)
        {
            _queuedSince = null;
            return false;
        }
        _queuedSince ??= now;
        return now - _queuedSince.Value >= (patience ?? Patience);
    }
}
