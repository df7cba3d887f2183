using Corral.Diagnostics;

namespace Corral.Tests;

/// <summary>How captured stacks read in the log: names as the runtime gives them, trimmed, idle threads counted.</summary>
public sealed class StackFormatTests
{
    private static readonly string[] PoolIdle =
    [
        "UNMANAGED_CODE_TIME",
        "System.Private.CoreLib.il!System.Threading.LowLevelLifoSemaphore.WaitForSignal(int32)",
        "System.Private.CoreLib.il!System.Threading.LowLevelLifoSemaphore.Wait(int32,bool)",
        "System.Private.CoreLib.il!System.Threading.PortableThreadPool+WorkerThread.WorkerThreadStart()",
        "System.Private.CoreLib.il!System.Threading.Thread.StartCallback()",
    ];

    private static readonly string[] Handler =
    [
        "UNMANAGED_CODE_TIME",
        "System.Private.CoreLib.il!System.Threading.Thread.Sleep(int32)",
        "TestApp!StackProbe.BlockHere(int32)",
        "TestApp!Program+<>c.<<Main>$>b__0_5(int32)",
        "Microsoft.AspNetCore.Http.RequestDelegateFactory!Microsoft.AspNetCore.Http.RequestDelegateFactory+<>c.<ExecuteWriteStringResponseAsync>b__0(class Microsoft.AspNetCore.Http.HttpContext)",
        "Microsoft.AspNetCore.Server.Kestrel.Core!Microsoft.AspNetCore.Server.Kestrel.Core.Internal.Http.HttpProtocol+<ProcessRequests>d__238`1[System.__Canon].MoveNext()",
        "System.Private.CoreLib.il!System.Threading.ThreadPoolWorkQueue.Dispatch()",
        "System.Private.CoreLib.il!System.Threading.Thread.StartCallback()",
    ];

    [Fact]
    public void Frames_lose_their_module_and_the_runtime_frames_below_the_app_are_counted()
    {
        var trimmed = StackFormat.Trim(Handler);
        Assert.Equal(
        [
            "[Native Frames]",
            "System.Threading.Thread.Sleep(int32)",
            "StackProbe.BlockHere(int32)",
            "Program+<>c.<<Main>$>b__0_5(int32)",
            "... 4 frames below (runtime and framework)",
        ], trimmed);
    }

    [Fact]
    public void A_stack_without_app_frames_is_kept_whole_and_pseudo_frames_go()
    {
        Assert.Equal(
        [
            "[Native Frames]",
            "System.Threading.LowLevelLifoSemaphore.WaitForSignal(int32)",
            "System.Threading.LowLevelLifoSemaphore.Wait(int32,bool)",
            "System.Threading.PortableThreadPool+WorkerThread.WorkerThreadStart()",
            "System.Threading.Thread.StartCallback()",
        ], StackFormat.Trim(["CPU_TIME", .. PoolIdle]));
    }

    [Fact]
    public void Identical_threads_are_shown_once_with_their_count_after_the_app_stacks()
    {
        var threads = new List<ThreadStack>
        {
            new(11, PoolIdle), new(12, PoolIdle), new(13, Handler), new(14, PoolIdle),
        };
        var text = StackFormat.Format(threads, osThreadId: null);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("  Thread 13:", lines[0]);
        Assert.Contains("      StackProbe.BlockHere(int32)", lines);
        Assert.Contains("  3 threads with this stack (11, 12, 14):", lines);
        Assert.Equal(1, lines.Count(l => l.Contains("WaitForSignal", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_thread_with_app_code_at_its_top_comes_before_the_main_thread_waiting_in_Run()
    {
        string[] main =
        [
            "UNMANAGED_CODE_TIME",
            "System.Private.CoreLib.il!System.Threading.Monitor.Wait(class System.Object,int32)",
            "System.Private.CoreLib.il!System.Threading.ManualResetEventSlim.Wait(int32,value class System.Threading.CancellationToken)",
            "Microsoft.Extensions.Hosting.Abstractions!Microsoft.Extensions.Hosting.HostingAbstractionsHostExtensions.Run(class Microsoft.Extensions.Hosting.IHost)",
            "TestApp!Program.<Main>$(class System.String[])",
        ];
        var lines = StackFormat.Format([new(10, main), new(13, Handler)], osThreadId: null).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("  Thread 13:", lines[0]);
        Assert.Contains("  Thread 10:", lines);
    }

    [Fact]
    public void The_thread_asked_for_comes_first_and_is_marked()
    {
        var threads = new List<ThreadStack> { new(11, Handler), new(13, Handler) };
        var lines = StackFormat.Format(threads, osThreadId: 13).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("  >> Thread 13 (the request's):", lines[0]);
        Assert.Contains("  Thread 11:", lines);

        var missing = StackFormat.Format(threads, osThreadId: 99);
        Assert.Contains("Thread 99 (the request's): no managed stack sampled", missing, StringComparison.Ordinal);
    }

    [Fact]
    public void A_deep_stack_is_cut()
    {
        var deep = Enumerable.Range(0, 100).Select(i => $"App!App.Recurse{i}()").ToList();
        var trimmed = StackFormat.Trim(deep);
        Assert.Equal(StackFormat.MaxFrames + 1, trimmed.Count);
        Assert.Equal("... 60 more frames", trimmed[^1]);
    }
}
