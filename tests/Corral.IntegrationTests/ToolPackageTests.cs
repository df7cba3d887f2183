using System.Diagnostics;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests;

/// <summary>corral ships as a .NET tool: dotnet pack, dotnet tool install --add-source, command `corral`.</summary>
public sealed class ToolPackageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-tool-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task PackedToolInstallsAndServes()
    {
        var apps = await TestApps.GetAsync();
        var feed = Path.Combine(_dir, "feed");
        var tools = Path.Combine(_dir, "tools");
        await RunAsync("dotnet", "pack", Path.Combine(TestApps.RepoRoot, "src", "Corral", "Corral.csproj"), "-c", "Release", "-o", feed, "--nologo",
            "-p:UseSharedCompilation=false", "--disable-build-servers");
        await RunAsync("dotnet", "tool", "install", "--tool-path", tools, "corral", "--add-source", feed);
        var corral = Path.Combine(tools, "corral");
        Assert.True(File.Exists(corral), "no corral command after dotnet tool install");

        var (code, output) = await RunAsync(corral, "--check-config", "-w", "2", apps.TestApp);
        Assert.Equal(0, code);
        Assert.Contains("configuration OK", output);

        using var server = Process.Start(new ProcessStartInfo(corral) { ArgumentList = { "-b", "127.0.0.1:0", apps.TestApp }, RedirectStandardError = true, RedirectStandardOutput = true })!;
        try
        {
            var port = 0;
            while (port == 0 && await server.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)) is { } line)
            {
                var m = System.Text.RegularExpressions.Regex.Match(line, @"Listening at: http://[^ ]+:(\d+) ");
                port = m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
            }
            _ = server.StandardError.ReadToEndAsync();
            _ = server.StandardOutput.ReadToEndAsync();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (true)
            {
                try
                {
                    Assert.Equal((200, "Hello World!"), await Http.GetAsync(port, "/"));
                    break;
                }
                catch (HttpRequestException) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(200);
                }
            }
        }
        finally
        {
            foreach (var pid in ProcessTree.Descendants(server.Id).Append(server.Id))
            {
                ProcessTree.Kill(pid, ProcessTree.SIGKILL);
            }
        }
    }

    [Fact]
    public async Task AgentPackageCarriesTheAgentRootsItAndSharesCorralsVersion()
    {
        // What a Native AOT app references (docs/deployment.md, "Native AOT apps").
        var feed = Path.Combine(_dir, "agent-feed");
        await RunAsync("dotnet", "pack", Path.Combine(TestApps.RepoRoot, "src", "Corral.Agent", "Corral.Agent.csproj"), "-c", "Release", "-o", feed, "--nologo",
            "-p:UseSharedCompilation=false", "--disable-build-servers");
        var version = FileVersionInfo.GetVersionInfo(TestApps.CorralDll).ProductVersion!.Split('+')[0];
        var package = Path.Combine(feed, $"Corral.Agent.{version}.nupkg");
        Assert.True(File.Exists(package), $"no {package}: {string.Join(", ", Directory.GetFiles(feed))}");

        using var zip = System.IO.Compression.ZipFile.OpenRead(package);
        var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Contains("lib/net10.0/Corral.Agent.dll", entries);
        foreach (var targets in new[] { "build/Corral.Agent.targets", "buildTransitive/Corral.Agent.targets" })
        {
            using var reader = new StreamReader(zip.GetEntry(targets)!.Open());
            Assert.Contains("<TrimmerRootAssembly Include=\"Corral.Agent\" />", await reader.ReadToEndAsync());
        }
        using var nuspec = new StreamReader(zip.GetEntry("Corral.Agent.nuspec")!.Open());
        var spec = await nuspec.ReadToEndAsync();
        Assert.DoesNotContain("<dependency ", spec); // the shared framework only
        Assert.Contains("Microsoft.AspNetCore.App", spec);
    }

    [Fact]
    public async Task ANativeAotAppThatReferencesTheAgentPackageServesUnderCorral()
    {
        // docs/deployment.md's route, end to end: pack, a package source, the conditional reference, an AOT publish, corral.
        var feed = Path.Combine(_dir, "agent-feed-e2e");
        // A version of its own, so that no copy of an earlier pack in the NuGet cache stands in for this one.
        var version = "0.0.0-e2e." + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", System.Globalization.CultureInfo.InvariantCulture);
        await RunAsync("dotnet", "pack", Path.Combine(TestApps.RepoRoot, "src", "Corral.Agent", "Corral.Agent.csproj"), "-c", "Release", "-o", feed, "--nologo",
            $"-p:PackageVersion={version}", "-p:UseSharedCompilation=false", "--disable-build-servers");

        var app = Path.Combine(_dir, "AotApp");
        Directory.CreateDirectory(app);
        await File.WriteAllTextAsync(Path.Combine(app, "Directory.Build.props"), "<Project />"); // a user's app, not the repository's
        await File.WriteAllTextAsync(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration><packageSources><add key="corral" value="{feed}" /></packageSources></configuration>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "AotApp.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk.Web">
              <PropertyGroup><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings><InvariantGlobalization>true</InvariantGlobalization></PropertyGroup>
              <ItemGroup Condition="'$(PublishAot)' == 'true'">
                <PackageReference Include="Corral.Agent" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), """
            var app = WebApplication.CreateSlimBuilder(args).Build();
            app.MapGet("/", () => "AOT, agent from the package");
            app.Run();
            """);
        var output = Path.Combine(app, "out");
        await RunAsync("dotnet", "publish", Path.Combine(app, "AotApp.csproj"), "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-o", output,
            "--nologo", "-p:UseSharedCompilation=false", "--disable-build-servers");
        var exe = Path.Combine(output, "AotApp");
        Assert.False(File.Exists(exe + ".dll"), "a Native AOT app has no IL beside it");

        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", exe]);
        var port = await corral.PortAsync();
        await corral.WaitForWorkersAsync(2, TimeSpan.FromSeconds(30));
        Assert.Equal((200, "AOT, agent from the package"), await Http.GetAsync(port, "/"));
        Assert.DoesNotContain("agent never started", corral.Output);
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await p.WaitForExitAsync(cts.Token);
        var output = await stdout + await stderr;
        if (file == "dotnet" && p.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet {string.Join(' ', args)} failed:\n{output}");
        }
        return (p.ExitCode, output);
    }
}
