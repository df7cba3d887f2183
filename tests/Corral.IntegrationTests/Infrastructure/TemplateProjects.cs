using System.Diagnostics;

namespace Corral.IntegrationTests.Infrastructure;

/// <summary>
/// Projects fresh from `dotnet new` templates, outside the repository (with their own empty
/// Directory.Build.props, so the repository's does not apply: a user's app), NOT built: given to corral
/// as projects. Each is created once per test run; <see cref="NewAsync"/> makes a private one to edit.
/// </summary>
public static class TemplateProjects
{
    private static readonly Dictionary<string, Lazy<Task<string>>> s_shared = new()
    {
        ["mvc"] = new(() => NewAsync("mvc", "PubMvc")),
        ["razor"] = new(() => NewAsync("razor", "PubRazor")),
        ["blazor"] = new(() => NewAsync("blazor", "PubBlazor")),
    };

    /// <summary>The shared project of <paramref name="template"/> (mvc, razor, blazor): its .csproj. Do not edit it.</summary>
    public static Task<string> SharedAsync(string template) => s_shared[template].Value;

    /// <summary>A new project from <paramref name="template"/> named <paramref name="name"/>, in a folder of its own: its .csproj.</summary>
    public static async Task<string> NewAsync(string template, string name)
    {
        var dir = Path.Combine(Scratch.NewDirectory($"corral-template-{template}-"), name);
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "Directory.Build.props"), "<Project />");
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "new", template, "--force", "-o", dir, "-n", name })
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet new {template} took over 2 minutes");
        }
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet new {template} failed ({p.ExitCode}):\n{await stdout}\n{await stderr}");
        }
        return Path.Combine(dir, name + ".csproj");
    }
}
