using System.Globalization;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests;

/// <summary>#15 item 5: a worker whose app runs out of memory is replaced, not left answering 500 for ever.</summary>
public sealed class OutOfMemoryTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AWorkerAtItsHeapLimitIsReplacedOverlappedAndLoggedOnce()
    {
        var apps = await TestApps.GetAsync();
        // A real limit: the GC's heap hard limit (what a memory cgroup gives a .NET process), 128 MB.
        using var corral = CorralProcess.Start(["-b", "127.0.0.1:0", "-w", "1", "-e", "DOTNET_GCHeapHardLimit=0x8000000",
            "--log-level", "debug", apps.TestApp]);
        var port = await corral.PortAsync();
        var first = (await corral.WaitForWorkersAsync(1, Boot)).Single();

        // Within the limit: served. Past it: the runtime throws OutOfMemoryException, the app answers 500.
        Assert.Equal(200, (await Http.GetAsync(port, "/allocate?mb=16")).Status);
        for (var i = 0; i < 3; i++)
        {
            var (status, body) = await Http.GetAsync(port, "/allocate?mb=512");
            if (status == 200)
            {
                // The successor answered: it has already taken over.
                Assert.NotEqual(first, int.Parse(body.Split(' ')[0], CultureInfo.InvariantCulture));
                break;
            }
            Assert.Equal(500, status);
        }

        // The worker is replaced: its successor boots first, then it drains and exits.
        var successor = (await corral.WaitForWorkersAsync(1, Boot, gone: [first])).Single();
        Assert.NotEqual(first, successor);
        var (ok, pid) = await Http.GetAsync(port, "/pid");
        Assert.Equal(200, ok);
        Assert.Equal(successor, int.Parse(pid, CultureInfo.InvariantCulture));
        await corral.WaitForLineAsync($@"Worker \(pid:{first}\) ran out of memory \(OutOfMemoryException\): starting its successor", Boot);
        Assert.Equal(1, corral.CountLines(@"\[" + first + @"\] \[WARNING\] Worker ran out of memory"));
        Assert.Equal(1, corral.CountLines($@"Worker \(pid:{first}\) ran out of memory"));
        Assert.DoesNotContain(corral.Lines, l => l.Contains("WORKER TIMEOUT", StringComparison.Ordinal));
    }
}
