namespace Corral.Agent.Admission;

/// <summary>
/// When the thread pool is starved, said once per episode: a probe work item queued by the
/// <see cref="StarvationGuard"/>'s own thread measures how long queued work waits. An episode begins
/// when a probe has waited <see cref="Threshold"/> (reported then, while the pool is still stuck, so
/// the master's capture of the stacks shows what blocks it), and ends once probes have waited less
/// than half of it for <see cref="CalmToEnd"/>: an episode that eases for a moment is not reported again.
/// </summary>
internal sealed class StarvationEpisodes
{
    public static readonly TimeSpan Threshold = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan CalmToEnd = TimeSpan.FromSeconds(5);

    private bool _inEpisode;
    private long? _calmSinceMs;

    public bool InEpisode => _inEpisode;

    /// <summary>
    /// How long the latest probe has waited (still queued) or waited (it ran), at <paramref name="nowMs"/>
    /// (a monotonic clock): the delay to report when an episode begins, else null.
    /// </summary>
    public long? Observe(long waitedMs, long nowMs)
    {
        var threshold = (long)Threshold.TotalMilliseconds;
        if (waitedMs >= threshold)
        {
            _calmSinceMs = null;
            if (_inEpisode)
            {
                return null;
            }
            _inEpisode = true;
            return waitedMs;
        }
        if (!_inEpisode)
        {
            return null;
        }
        if (waitedMs >= threshold / 2)
        {
            _calmSinceMs = null;
            return null;
        }
        _calmSinceMs ??= nowMs;
        if (nowMs - _calmSinceMs >= (long)CalmToEnd.TotalMilliseconds)
        {
            _inEpisode = false;
            _calmSinceMs = null;
        }
        return null;
    }
}
