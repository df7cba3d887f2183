namespace Corral.Agent.Admission;

/// <summary>
/// The guard's decisions, apart from the clock and the pool so that they can be tested. An interval
/// is "stalled" when work is queued and nothing completed, and the guard itself woke on time (a late
/// wake-up means the whole process was paused: a GC, or other processes holding the cores; more
/// threads would not help then). After <see cref="StallsToRaise"/> stalled intervals in a row the
/// minimum goes up to the threads there are plus the queued work (at most the cap); after
/// <see cref="CalmToLower"/> without a stall it goes back to what it was before, unless something
/// else (the app) has set it in between. Before, a single 25 ms interval without a completion raised
/// it for good: under load on a busy machine that happens by chance, and the workers grew to 40-60
/// threads that then all competed for the cores.
/// </summary>
internal sealed class StarvationPolicy(int cap)
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(25);
    public const int StallsToRaise = 3;
    public static readonly TimeSpan CalmToLower = TimeSpan.FromSeconds(10);

    private int _stalls;
    private TimeSpan _calm;
    private int? _raisedTo;
    private int _restoreTo;

    /// <summary>
    /// One interval's observation, with the pool's minimum as it is now; returns the minimum to set
    /// now, or null to leave it.
    /// </summary>
    public int? Observe(long completedInInterval, long pending, int threads, TimeSpan elapsed, int currentMinimum)
    {
        if (_raisedTo is { } raised && raised != currentMinimum)
        {
            _raisedTo = null; // set by someone else since: theirs to keep
        }
        var onTime = elapsed <= Interval * 2;
        if (pending > 0 && completedInInterval == 0 && onTime)
        {
            _calm = TimeSpan.Zero;
            if (++_stalls < StallsToRaise)
            {
                return null;
            }
            var wanted = (int)Math.Min(cap, threads + pending);
            if (wanted <= currentMinimum)
            {
                return null;
            }
            if (_raisedTo is null)
            {
                _restoreTo = currentMinimum;
            }
            _raisedTo = wanted;
            return wanted;
        }
        _stalls = 0;
        if (_raisedTo is null)
        {
            return null;
        }
        _calm += elapsed;
        if (_calm < CalmToLower)
        {
            return null;
        }
        _calm = TimeSpan.Zero;
        _raisedTo = null;
        return _restoreTo;
    }
}
