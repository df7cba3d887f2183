using System.Globalization;
using System.Text;

namespace Corral.Diagnostics;

/// <summary>
/// The stacks as the error log shows them: per thread its OS thread id and its frames, top first, named
/// as the runtime names methods (<c>Namespace.Type.Method(args)</c>, a lambda <c>Namespace.Type.&lt;&gt;c.&lt;Main&gt;b__0_3</c>),
/// trimmed to what helps: the module prefixes go, the runtime's frames below the outermost app frame
/// are counted instead of listed, and threads with the same stack (idle pool threads) are shown once
/// with their count. The thread of interest (a hung request's) comes first, marked.
/// </summary>
public static class StackFormat
{
    /// <summary>The most frames shown for one thread: deeper ones are counted.</summary>
    public const int MaxFrames = 40;

    /// <summary>Frames of the runtime and the framework, not the app's (Corral's agent included).</summary>
    private static readonly string[] FrameworkPrefixes = ["System.", "Microsoft.", "Corral.Agent.", "Interop+", "Interop.", "Internal.", "dynamicClass."];

    /// <summary>The lines after the header: one block per distinct stack, each frame indented.</summary>
    public static string Format(IReadOnlyList<ThreadStack> threads, int? osThreadId)
    {
        var sb = new StringBuilder();
        var marked = osThreadId is { } id ? threads.FirstOrDefault(t => t.OsThreadId == id) : null;
        if (osThreadId is { } missing && marked is null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\n  Thread {missing} (the request's): no managed stack sampled (gone, or running native code)");
        }
        if (marked is not null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\n  >> Thread {marked.OsThreadId} (the request's):");
            AppendFrames(sb, Trim(marked.Frames));
        }
        var groups = threads.Where(t => t != marked)
            .Select(t => (t.OsThreadId, Frames: Trim(t.Frames)))
            .Where(t => t.Frames.Count > 0)
            .GroupBy(t => string.Join('\n', t.Frames))
            // The app's stacks first, those with app code nearest the top first (a blocked handler
            // before the main thread waiting in Run), then by how many threads share one.
            .OrderBy(g => g.First().Frames.ToList().FindIndex(f => IsAppFrame(f)) is var i && i >= 0 ? i : int.MaxValue)
            .ThenByDescending(g => g.Count())
            .ThenBy(g => g.Min(t => t.OsThreadId));
        foreach (var g in groups)
        {
            var ids = g.Select(t => t.OsThreadId).Order().ToList();
            if (ids.Count == 1)
            {
                sb.Append(CultureInfo.InvariantCulture, $"\n  Thread {ids[0]}:");
            }
            else
            {
                var shown = string.Join(", ", ids.Take(8));
                sb.Append(CultureInfo.InvariantCulture, $"\n  {ids.Count} threads with this stack ({shown}{(ids.Count > 8 ? ", ..." : "")}):");
            }
            AppendFrames(sb, g.First().Frames);
        }
        return sb.ToString();
    }

    private static void AppendFrames(StringBuilder sb, IReadOnlyList<string> frames)
    {
        foreach (var f in frames)
        {
            sb.Append("\n      ").Append(f);
        }
    }

    /// <summary>One thread's frames as shown: names without modules, the runtime's outer frames counted.</summary>
    public static IReadOnlyList<string> Trim(IReadOnlyList<string> frames)
    {
        var names = new List<string>(frames.Count);
        foreach (var f in frames)
        {
            var name = Name(f);
            if (name is null || (names.Count > 0 && names[^1] == name))
            {
                continue;
            }
            names.Add(name);
        }
        // Below the outermost app frame are the runtime's (thread start, pool dispatch, hosting): counted.
        var lastApp = names.FindLastIndex(IsAppFrame);
        var keep = lastApp >= 0 ? lastApp + 1 : names.Count;
        var cut = keep > MaxFrames;
        keep = Math.Min(keep, MaxFrames);
        var shown = names.Take(keep).ToList();
        if (names.Count > keep)
        {
            shown.Add(string.Create(CultureInfo.InvariantCulture,
                $"... {names.Count - keep} {(cut ? "more frames" : "frames below (runtime and framework)")}"));
        }
        return shown;
    }

    private const string NativeFrames = "[Native Frames]";

    /// <summary>A frame's name as the runtime gives it, without the module ("System.Private.CoreLib.il!"); null for pseudo-frames.</summary>
    public static string? Name(string frame)
    {
        if (frame is "CPU_TIME" or "BLOCKED_TIME" or "UNKNOWN_ASYNC" or "?" || frame.StartsWith("Process", StringComparison.Ordinal) && frame.Contains('('))
        {
            return null;
        }
        if (frame.Contains("UNMANAGED_CODE_TIME", StringComparison.Ordinal))
        {
            return NativeFrames;
        }
        var bang = frame.IndexOf('!', StringComparison.Ordinal);
        return bang >= 0 ? frame[(bang + 1)..] : frame;
    }

    /// <summary>Whether a frame is the app's code (not the runtime's, the framework's or corral's agent).</summary>
    public static bool IsAppFrame(string name) =>
        name != NativeFrames && !name.StartsWith("...", StringComparison.Ordinal)
        && !FrameworkPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal));
}
