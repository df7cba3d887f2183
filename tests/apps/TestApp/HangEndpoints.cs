using System.Globalization;

/// <summary>
/// Handlers that run past --request-timeout, as named methods so that a captured stack names them:
/// /hang/spin (an infinite loop: it pins a core), /hang/sleep (Thread.Sleep(Infinite): a blocked
/// thread), /hang/cooperative (waits 60 s on the request's token: stops when it fires).
/// </summary>
internal static class HangEndpoints
{
    private static long s_spins;

    public static WebApplication MapHangEndpoints(this WebApplication app)
    {
        app.MapGet("/hang/spin", SpinForever);
        app.MapGet("/hang/sleep", SleepForever);
        app.MapGet("/hang/cooperative", CooperativeSlow);
        return app;
    }

    /// <summary>Never returns, never yields its thread, never looks at a token.</summary>
    public static string SpinForever()
    {
        while (true)
        {
            Interlocked.Increment(ref s_spins);
        }
    }

    /// <summary>
    /// Blocks its thread for ever. Not inlined: the JIT inlines a method this small into its caller (here
    /// the minimal API's compiled delegate), and then no stack, ours or any profiler's, shows it.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    public static string SleepForever()
    {
        Thread.Sleep(Timeout.Infinite);
        return "";
    }

    /// <summary>Slow, but passes the request's token on: cancelled at the deadline.</summary>
    public static async Task<string> CooperativeSlow(CancellationToken cancellationToken)
    {
        await Task.Delay(TimeSpan.FromSeconds(60), cancellationToken);
        return Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
    }
}
