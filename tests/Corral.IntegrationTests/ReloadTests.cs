using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests;

/// <summary>The development server: corral --reload PROJECT rebuilds on change and keeps serving through a broken build.</summary>
public sealed class ReloadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-reload-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task AnEditIsServedAfterTheRebuildAndABrokenBuildKeepsTheOldWorkers()
    {
        // A copy of TestApp outside the repository, as a user's project.
        var source = Path.Combine(TestApps.RepoRoot, "tests", "apps", "TestApp");
        foreach (var f in Directory.GetFiles(source, "*.cs").Append(Path.Combine(source, "TestApp.csproj")))
        {
            File.Copy(f, Path.Combine(_dir, Path.GetFileName(f)));
        }
        File.WriteAllText(Path.Combine(_dir, "Directory.Build.props"), "<Project />");
        var program = Path.Combine(_dir, "Program.cs");

        using var corral = CorralProcess.Start(["--reload", "-b", "127.0.0.1:0", _dir]);
        var port = await corral.PortAsync(TimeSpan.FromSeconds(180)); // the first build
        await corral.WaitForLineAsync("Worker ready", TimeSpan.FromSeconds(120));
        Assert.Equal((200, "Hello World!"), await Http.GetAsync(port, "/"));
        Assert.Equal((200, "Development"), await Http.GetAsync(port, "/env/ASPNETCORE_ENVIRONMENT"));

        File.WriteAllText(program, File.ReadAllText(program).Replace("\"Hello World!\"", "\"Hello again!\"", StringComparison.Ordinal));
        await WaitForBodyAsync(port, "Hello again!", corral);

        // A broken build: compiler errors in the log, the running workers keep answering.
        File.WriteAllText(program, File.ReadAllText(program).Replace("\"Hello again!\");", "\"Hello again!\")  // missing semicolon", StringComparison.Ordinal));
        await corral.WaitForLineAsync(@"error CS\d+", TimeSpan.FromSeconds(120));
        await corral.WaitForLineAsync("the old workers keep serving", TimeSpan.FromSeconds(10));
        Assert.Equal((200, "Hello again!"), await Http.GetAsync(port, "/"));

        File.WriteAllText(program, File.ReadAllText(program).Replace("\"Hello again!\")  // missing semicolon", "\"Fixed!\");", StringComparison.Ordinal));
        await WaitForBodyAsync(port, "Fixed!", corral);
    }

    private static async Task WaitForBodyAsync(int port, string body, CorralProcess corral)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        var failures = 0;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var (status, text) = await Http.GetAsync(port, "/");
                Assert.Equal(200, status);
                if (text == body)
                {
                    Assert.Equal(0, failures);
                    return;
                }
            }
            catch (HttpRequestException)
            {
                failures++;
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"'{body}' was not served within 120 s. Output:\n{corral.Output}");
    }
}
