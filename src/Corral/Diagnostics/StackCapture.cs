using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Globalization;
using Corral.Os;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Symbols;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Stacks;

namespace Corral.Diagnostics;

/// <summary>The managed stack of one thread of a worker: its OS thread id and its frames, top (innermost) first.</summary>
public sealed record ThreadStack(int OsThreadId, IReadOnlyList<string> Frames);

/// <summary>Why a capture gave up: one line, said as it is in the log.</summary>
public sealed class StackCaptureException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The managed stacks of every thread of a running .NET process, from the outside, as dotnet-stack
/// does (dotnet/diagnostics, src/Tools/dotnet-stack/ReportCommand.cs): a short EventPipe session over
/// the runtime's diagnostics socket with the sample profiler (which walks every managed thread) and a
/// rundown (which names the methods), read back with TraceEvent. The diagnostics server runs on a
/// native thread of the runtime: it answers while the app's threads, and its thread pool, are stuck.
/// Master only: the agent must not depend on these packages.
/// </summary>
public static class StackCapture
{
    /// <summary>How long the profiler samples: one sample of each thread is enough (dotnet-stack takes 10 ms).</summary>
    public static readonly TimeSpan SampleFor = TimeSpan.FromMilliseconds(50);

    /// <summary>Captures the stacks of <paramref name="pid"/> within <paramref name="bound"/>; throws <see cref="StackCaptureException"/> with the reason.</summary>
    public static async Task<IReadOnlyList<ThreadStack>> CaptureAsync(int pid, TimeSpan bound)
    {
        using var cts = new CancellationTokenSource(bound);
        var work = Task.Run(() => CaptureCoreAsync(pid, cts.Token));
        if (await Task.WhenAny(work, Task.Delay(bound + TimeSpan.FromMilliseconds(200))).ConfigureAwait(false) != work)
        {
            // Reading the trace back is not cancellable: it ends on its own; its result is dropped.
            _ = work.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
            throw new StackCaptureException($"gave up after {bound.TotalSeconds:0.#} s");
        }
        try
        {
            return await work.ConfigureAwait(false);
        }
        catch (OperationCanceledException e)
        {
            throw new StackCaptureException($"gave up after {bound.TotalSeconds:0.#} s (the diagnostics server did not answer in time)", e);
        }
    }

    private static async Task<IReadOnlyList<ThreadStack>> CaptureCoreAsync(int pid, CancellationToken ct)
    {
        var socketProblem = DiagnosticsSocketProblem(pid);
        var trace = Path.Combine(Path.GetTempPath(), $"corral-stacks-{pid}-{Guid.NewGuid():N}.nettrace");
        string? etlx = null;
        try
        {
            var client = new DiagnosticsClient(pid);
            var providers = new[] { new EventPipeProvider("Microsoft-DotNETCore-SampleProfiler", EventLevel.Informational) };
            EventPipeSession session;
            try
            {
                session = await client.StartEventPipeSessionAsync(providers, requestRundown: true, circularBufferMB: 64, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ServerNotAvailableException or DiagnosticsClientException or UnauthorizedAccessException or IOException
                or System.Net.Sockets.SocketException)
            {
                throw new StackCaptureException(socketProblem ?? $"the worker's diagnostics server refused: {OneLine(e.Message)}", e);
            }
            using (session)
            {
                await using (var file = File.Create(trace))
                {
                    var copy = session.EventStream.CopyToAsync(file, ct);
                    await Task.Delay(SampleFor, ct).ConfigureAwait(false);
                    await session.StopAsync(ct).ConfigureAwait(false);
                    await copy.ConfigureAwait(false);
                }
            }
            etlx = TraceLog.CreateFromEventPipeDataFile(trace);
            return Read(etlx);
        }
        finally
        {
            RuntimeFiles.TryDelete(trace);
            if (etlx is not null)
            {
                RuntimeFiles.TryDelete(etlx);
            }
        }
    }

    /// <summary>Each thread's first sample, as dotnet-stack prints them.</summary>
    private static List<ThreadStack> Read(string etlx)
    {
        // No symbol path: managed frames are named by the rundown; nothing is fetched from a symbol server.
        using var symbols = new SymbolReader(TextWriter.Null, "");
        using var log = new TraceLog(etlx);
        var source = new MutableTraceEventStackSource(log) { OnlyManagedCodeStacks = true };
        new SampleProfilerThreadTimeComputer(log, symbols).GenerateThreadTimeStacks(source);
        var threads = new Dictionary<int, ThreadStack>();
        source.ForEach(sample =>
        {
            var frames = new List<string>();
            var index = sample.StackIndex;
            while (index != StackSourceCallStackIndex.Invalid)
            {
                var name = source.GetFrameName(source.GetFrameIndex(index), false);
                if (name.StartsWith("Thread (", StringComparison.Ordinal))
                {
                    var end = name.IndexOf(')', StringComparison.Ordinal);
                    if (end > 8 && int.TryParse(name.AsSpan(8, end - 8), NumberStyles.Integer, CultureInfo.InvariantCulture, out var tid))
                    {
                        threads.TryAdd(tid, new ThreadStack(tid, frames));
                    }
                    return;
                }
                frames.Add(name);
                index = source.GetCallerIndex(index);
            }
        });
        return [.. threads.Values.OrderBy(t => t.OsThreadId)];
    }

    /// <summary>
    /// Why no diagnostics socket of <paramref name="pid"/> can be found (it runs with
    /// DOTNET_EnableDiagnostics=0, or in a temp folder the master cannot see), or null when one is there.
    /// </summary>
    public static string? DiagnosticsSocketProblem(int pid)
    {
        if (!Directory.Exists($"/proc/{pid}"))
        {
            return "the worker is gone";
        }
        var environ = ReadEnviron(pid);
        if (environ is not null)
        {
            foreach (var name in (string[])["DOTNET_EnableDiagnostics", "COMPlus_EnableDiagnostics", "DOTNET_EnableDiagnostics_IPC"])
            {
                if (environ.TryGetValue(name, out var value) && value.Trim() == "0")
                {
                    return $"diagnostics are disabled in the worker ({name}=0 in its environment)";
                }
            }
        }
        var tmp = environ?.GetValueOrDefault("TMPDIR") is { Length: > 0 } t ? t : "/tmp";
        try
        {
            if (!Directory.EnumerateFiles(tmp, $"dotnet-diagnostic-{pid}-*-socket").Any())
            {
                return $"the worker has no diagnostics socket in {tmp} (DOTNET_EnableDiagnostics=0, or a runtime that does not make one)";
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot look for the worker's diagnostics socket in {tmp}: {OneLine(e.Message)}";
        }
        return null;
    }

    private static Dictionary<string, string>? ReadEnviron(int pid)
    {
        try
        {
            var raw = File.ReadAllText($"/proc/{pid}/environ");
            var env = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in raw.Split('\0', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = entry.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    env[entry[..eq]] = entry[(eq + 1)..];
                }
            }
            return env;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();

    /// <summary>How long one capture took, for the log's line.</summary>
    public static string Elapsed(long startTimestamp) =>
        string.Create(CultureInfo.InvariantCulture, $"{Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds:0} ms");
}
