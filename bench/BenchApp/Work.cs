namespace BenchApp;

/// <summary>The fixed CPU work of /cpu-bound; bench/flask/app.py runs the same loop.</summary>
public static class Work
{
    /// <summary>Used when neither ?iters= nor BENCH_CPU_ITERS is given (about 1 s on a 2020s x86 core).</summary>
    public const long DefaultIters = 700_000_000;

    /// <summary>The seed's time.sleep(5).</summary>
    public const int DefaultSleepMs = 5000;

    /// <summary>
    /// A 32-bit linear congruential generator stepped <paramref name="iters"/> times. Each step
    /// depends on the previous one, so the JIT can neither vectorize nor skip it, and the result
    /// is returned so the loop is not dead code.
    /// </summary>
    public static uint Spin(long iters)
    {
        uint x = 1;
        for (long i = 0; i < iters; i++)
        {
            x = unchecked((x * 1103515245u) + 12345u);
        }

        return x;
    }
}
