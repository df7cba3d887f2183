using System.Runtime.CompilerServices;

/// <summary>
/// Handlers that block in methods with names, for the tests of the master's stack captures (a WORKER
/// TIMEOUT, a starved thread pool): the log must name <see cref="BlockHere"/>.
/// </summary>
public static class StackProbe
{
    /// <summary>
    /// /stacks/block?ms=N blocks its thread N ms in <see cref="BlockHere"/>; /stacks/starve?n=N&amp;ms=M
    /// queues N work items that each block M ms in it and waits for them (sync over async: the
    /// thread pool starves).
    /// </summary>
    public static void MapStackProbeEndpoints(this WebApplication app)
    {
        app.MapGet("/stacks/block", (int ms) =>
        {
            BlockHere(ms);
            return "unblocked";
        });
        app.MapGet("/stacks/starve", (int n, int ms) =>
        {
            WaitForBlockers(n, ms);
            return "unblocked";
        });
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void BlockHere(int ms) => Thread.Sleep(ms);

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void WaitForBlockers(int n, int ms)
    {
        var blockers = Enumerable.Range(0, n).Select(_ => Task.Run(() => BlockHere(ms))).ToArray();
        Task.WaitAll(blockers);
    }
}
