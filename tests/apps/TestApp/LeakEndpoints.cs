using System.Globalization;
using System.Runtime.InteropServices;

/// <summary>
/// Memory leaks on demand, for --max-worker-memory's tests:
///   GET /leak?kb=N                 keeps N KB more in a static list (every page touched); answers "PID KEPT_KB"
///   GET /leak/fast?mb=N&amp;step_ms=M  in this one request, allocates N MB of native memory, 8 MB every M ms
///                                  (every page touched, never freed: a native leak, beyond the GC's
///                                  heap limit), then answers "PID"
///   GET /leak/size                 "PID KEPT_KB"
/// </summary>
internal static class LeakEndpoints
{
    private static readonly List<byte[]> s_kept = [];
    private static long s_keptBytes;

    public static void MapLeakEndpoints(this WebApplication app)
    {
        app.MapGet("/leak", (int kb) =>
        {
            var block = new byte[kb * 1024L];
            // The GC hands out fresh pages without writing them: touch each, so they count in PSS.
            for (var i = 0; i < block.Length; i += 4096)
            {
                block[i] = 1;
            }
            lock (s_kept)
            {
                s_kept.Add(block);
                s_keptBytes += block.Length;
                return Answer();
            }
        });
        app.MapGet("/leak/size", () =>
        {
            lock (s_kept)
            {
                return Answer();
            }
        });
        app.MapGet("/leak/fast", async (int mb, int? step_ms) =>
        {
            const int Step = 8 << 20;
            for (long done = 0; done < mb * (1L << 20); done += Step)
            {
                var block = Marshal.AllocHGlobal(Step);
                for (var i = 0; i < Step; i += 4096)
                {
                    Marshal.WriteByte(block, i, 1);
                }
                await Task.Delay(step_ms ?? 50);
            }
            return Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        });
    }

    private static string Answer() => string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId} {s_keptBytes / 1024}");
}
