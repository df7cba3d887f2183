namespace Corral.Agent.Http.Affinity;

/// <summary>
/// Finds the mark (<see cref="AffinityMarker"/>) in a request's raw query string: the first "id"
/// parameter, the one SignalR reads, and the query without the mark (the token as issued).
/// </summary>
internal static class AffinityQuery
{
    /// <summary>
    /// The check every request pays: could this query carry a mark? Two ordinal searches, and
    /// none at all for a request without a query string.
    /// </summary>
    public static bool MayCarry(string? query) =>
        query is { Length: > 4 }
        && query.Contains("id=", StringComparison.Ordinal)
        && (query.Contains(AffinityMarker.Separator) || query.Contains("%7E", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The pid marked on the first "id" parameter of <paramref name="query"/> ("?id=4242~T&amp;x=1"),
    /// and the query with the mark taken out ("?id=T&amp;x=1"). False: no such parameter, or no mark on it.
    /// </summary>
    public static bool TryFind(string query, out int pid, out string stripped)
    {
        pid = 0;
        stripped = query;
        var at = 0;
        while ((at = query.IndexOf("id=", at, StringComparison.Ordinal)) >= 0)
        {
            // "id" itself, not "userid": at the start of the query or after a '&'.
            if (at == 0 || query[at - 1] is '?' or '&')
            {
                var start = at + 3;
                var end = query.IndexOf('&', start);
                var value = query.AsSpan(start, (end < 0 ? query.Length : end) - start);
                if (!AffinityMarker.TryParse(value, out pid, out var length))
                {
                    return false; // SignalR reads the first "id" only
                }
                stripped = query.Remove(start, length);
                return true;
            }
            at += 3;
        }
        return false;
    }
}
