using System.Diagnostics;

namespace Corral.IntegrationTests.Infrastructure;

/// <summary>
/// The apps the tests run under corral, built once per test run and shared by every test:
/// tests/apps/TestApp, tests/apps/RealtimeApp (a SignalR hub and raw websockets), a fresh
/// `dotnet new web` app, and two apps that are not web apps: a plain
/// console app and a `dotnet new worker` service (a generic host without ASP.NET Core).
/// </summary>
public static class TestApps
{
    private static readonly Lazy<Task<Built>> s_built = new(BuildAllAsync);

    public sealed record Built(string TestApp, string FreshWebDll, string FreshWebDir, string ConsoleDll, string SeedApp, string WorkerDll, string RealtimeApp);

    public static Task<Built> GetAsync() => s_built.Value;

    private static readonly Lazy<Task<string>> s_seedAppAot = new(PublishSeedAppAotAsync);

    /// <summary>SeedApp published as Native AOT (with the agent linked in): its executable. Only the tests that need it pay for it.</summary>
    public static Task<string> SeedAppNativeAotAsync() => s_seedAppAot.Value;

    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>corral.dll as built next to the tests (with Corral.Agent.dll beside it).</summary>
    public static string CorralDll => Path.Combine(AppContext.BaseDirectory, "corral.dll");

    private static async Task<Built> BuildAllAsync()
    {
        var scratch = Scratch.NewDirectory("corral-apps-");
        var testApp = BuildAsync(Path.Combine(RepoRoot, "tests", "apps", "TestApp", "TestApp.csproj"), Path.Combine(scratch, "TestApp"));
        var freshDir = Path.Combine(scratch, "FreshWeb");
        var consoleDir = Path.Combine(scratch, "PlainConsole");
        var fresh = NewAndBuildAsync("web", freshDir, Path.Combine(scratch, "FreshWeb-out"));
        var console = NewAndBuildAsync("console", consoleDir, Path.Combine(scratch, "PlainConsole-out"));
        var worker = NewAndBuildAsync("worker", Path.Combine(scratch, "WorkerService"), Path.Combine(scratch, "WorkerService-out"));
        var seedApp = BuildAsync(Path.Combine(RepoRoot, "examples", "SeedApp", "SeedApp.csproj"), Path.Combine(scratch, "SeedApp"));
        var realtime = BuildAsync(Path.Combine(RepoRoot, "tests", "apps", "RealtimeApp", "RealtimeApp.csproj"), Path.Combine(scratch, "RealtimeApp"));
        return new Built(await testApp, await fresh, freshDir, await console, await seedApp, await worker, await realtime);
    }

    private static readonly Lazy<Task<string>> s_seedAppAotBuild = new(async () =>
    {
        await GetAsync(); // both restore into examples/SeedApp/obj
        return await BuildAsync(Path.Combine(RepoRoot, "examples", "SeedApp", "SeedApp.csproj"),
            Scratch.NewDirectory("corral-seedapp-aot-build-"), "-p:PublishAot=true");
    });

    /// <summary>SeedApp built (not published) with PublishAot=true: IL whose runtimeconfig.json switches startup hooks off.</summary>
    public static Task<string> SeedAppAotBuildAsync() => s_seedAppAotBuild.Value;

    private static readonly Lazy<Task<string>> s_ownAgentApp = new(async () =>
    {
        // A user's web app (outside the repository) that references Corral.Agent in every build, not only for AOT.
        var dir = Scratch.NewDirectory("corral-own-agent-");
        await File.WriteAllTextAsync(Path.Combine(dir, "Directory.Build.props"), "<Project />");
        await File.WriteAllTextAsync(Path.Combine(dir, "OwnAgent.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk.Web">
              <PropertyGroup><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings></PropertyGroup>
              <ItemGroup><ProjectReference Include="{Path.Combine(RepoRoot, "src", "Corral.Agent", "Corral.Agent.csproj")}" /></ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(dir, "Program.cs"), """
            var app = WebApplication.CreateBuilder(args).Build();
            app.MapGet("/", () => "own agent");
            app.Run();
            """);
        return await BuildAsync(Path.Combine(dir, "OwnAgent.csproj"), Path.Combine(dir, "out"));
    });

    /// <summary>A JIT web app that carries its own Corral.Agent.dll.</summary>
    public static Task<string> OwnAgentAppAsync() => s_ownAgentApp.Value;

    private static async Task<string> PublishSeedAppAotAsync()
    {
        // After the shared build: both restore into examples/SeedApp/obj.
        await GetAsync();
        var output = Scratch.NewDirectory("corral-seedapp-aot-");
        var project = Path.Combine(RepoRoot, "examples", "SeedApp", "SeedApp.csproj");
        await RunAsync(Path.GetDirectoryName(project)!, "publish", project, "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true",
            "-o", output, "--nologo", "-v", "q", "-p:UseSharedCompilation=false", "--disable-build-servers");
        return Path.Combine(output, "SeedApp");
    }

    internal static async Task<string> NewAndBuildAsync(string template, string dir, string output)
    {
        // Outside the repository, so that its Directory.Build.props does not apply: a user's app.
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "Directory.Build.props"), "<Project />");
        await RunAsync(dir, "new", template, "--force", "-o", dir, "-n", Path.GetFileName(dir));
        return await BuildAsync(Path.Combine(dir, Path.GetFileName(dir) + ".csproj"), output);
    }

    private static async Task<string> BuildAsync(string project, string output, params string[] properties)
    {
        await RunAsync(Path.GetDirectoryName(project)!, ["build", project, "-c", "Release", "-o", output, "--nologo", "-v", "q",
            "-p:UseSharedCompilation=false", "--disable-build-servers", .. properties]);
        return Path.Combine(output, Path.GetFileNameWithoutExtension(project) + ".dll");
    }

    private static async Task RunAsync(string cwd, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {string.Join(' ', args)} took over 4 minutes");
        }
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet {string.Join(' ', args)} failed ({p.ExitCode}):\n{await stdout}\n{await stderr}");
        }
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Corral.slnx")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Corral.slnx) above " + AppContext.BaseDirectory);
    }
}
