using System.Globalization;

namespace Corral.Lifecycle;

/// <summary>
/// What the master says while a project builds, so that a first build (a restore, a minute on a fresh
/// clone) is not silent: dotnet's own step lines (restore, each project compiled, the publish folder),
/// a "still ..." line after each quiet stretch, and the time it took.
/// </summary>
public static class BuildProgress
{
    /// <summary>How long the build may say nothing before the master says it still runs.</summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromSeconds(10);

    /// <summary>A line of dotnet's minimal output that marks a step (shown as it is), or null.</summary>
    public static string? Step(string line)
    {
        var text = line.Trim();
        if (text.Length == 0 || text.Contains(": error ", StringComparison.Ordinal) || text.Contains(": warning ", StringComparison.Ordinal))
        {
            return null;
        }
        // "Determining projects to restore...", "Restored /src/App/App.csproj (in 12.3 sec).", "All projects are up-to-date for restore."
        // then "App -> /src/App/bin/Release/net10.0/App.dll" (compiled) and "App -> /tmp/corral-builds-1/publish-1/" (published).
        return text.StartsWith("Determining projects to restore", StringComparison.Ordinal)
            || text.StartsWith("Restored ", StringComparison.Ordinal)
            || text.StartsWith("All projects are up-to-date", StringComparison.Ordinal)
            || text.Contains(" -> ", StringComparison.Ordinal)
            ? text : null;
    }

    /// <summary>The "still ..." line once the build has said nothing for <see cref="Quiet"/>, or null.</summary>
    public static string? Heartbeat(string verb, string project, TimeSpan sinceStart, TimeSpan sinceLastLine) =>
        sinceLastLine >= Quiet
            ? string.Create(CultureInfo.InvariantCulture, $"Still {verb} {Path.GetFileName(project)} ({sinceStart.TotalSeconds:0} s)")
            : null;

    /// <summary>The line that ends a good build: "Published App.csproj in 42.1 s".</summary>
    public static string Done(string past, string project, TimeSpan took) =>
        string.Create(CultureInfo.InvariantCulture, $"{past} {Path.GetFileName(project)} in {took.TotalSeconds:0.0} s");
}
