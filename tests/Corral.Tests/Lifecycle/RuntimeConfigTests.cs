using Corral.Lifecycle;

namespace Corral.Tests;

/// <summary>What corral reads from an app's runtimeconfig.json before any worker starts (AppTarget.RuntimeConfigProblem).</summary>
public sealed class RuntimeConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-runtimeconfig-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string? Problem(string json)
    {
        var path = Path.Combine(_dir, "App.runtimeconfig.json");
        File.WriteAllText(path, json);
        return AppTarget.RuntimeConfigProblem("App.dll", path);
    }

    private const string NetCore = """{ "name": "Microsoft.NETCore.App", "version": "10.0.0" }""";
    private const string AspNetCore = """{ "name": "Microsoft.AspNetCore.App", "version": "10.0.0" }""";

    [Theory]
    // `dotnet new web`: the ASP.NET Core framework alone (it brings Microsoft.NETCore.App).
    [InlineData($$"""{ "runtimeOptions": { "tfm": "net10.0", "framework": {{AspNetCore}} } }""")]
    // Several frameworks (tests/apps/TestApp's build).
    [InlineData($$"""{ "runtimeOptions": { "frameworks": [ {{NetCore}}, {{AspNetCore}} ] } }""")]
    // Self-contained: the frameworks it carries.
    [InlineData($$"""{ "runtimeOptions": { "includedFrameworks": [ {{NetCore}}, {{AspNetCore}} ] } }""")]
    // Says nothing about frameworks: corral cannot tell, the agent will.
    [InlineData("""{ "runtimeOptions": { "tfm": "net10.0" } }""")]
    [InlineData("""{ }""")]
    public void AWebAppOrOneThatCannotBeToldIsRun(string json) => Assert.Null(Problem(json));

    [Theory]
    // `dotnet new worker` and `dotnet new console`.
    [InlineData($$"""{ "runtimeOptions": { "tfm": "net10.0", "framework": {{NetCore}} } }""", "(only Microsoft.NETCore.App)")]
    [InlineData($$"""{ "runtimeOptions": { "includedFrameworks": [ {{NetCore}} ] } }""", "(only Microsoft.NETCore.App)")]
    [InlineData("""{ "runtimeOptions": { "frameworks": [] } }""", "framework: a worker service")]
    public void AnAppWithoutTheAspNetCoreFrameworkIsNotAWebApp(string json, string detail)
    {
        var problem = Problem(json);
        Assert.NotNull(problem);
        Assert.StartsWith("APP App.dll: not an ASP.NET Core app: App.runtimeconfig.json names no Microsoft.AspNetCore.App framework", problem);
        Assert.Contains(detail, problem);
        Assert.DoesNotContain('\n', problem);
    }

    [Fact]
    public void StartupHooksOffIsStillSaid() =>
        Assert.Contains("switches startup hooks off", Problem($$"""
            { "runtimeOptions": { "framework": {{AspNetCore}}, "configProperties": { "System.StartupHookProvider.IsSupported": false } } }
            """));

    [Fact]
    public void ANativeAotAppHasNoRuntimeConfigAndIsNotRefused() =>
        Assert.Null(AppTarget.RuntimeConfigProblem("App", Path.Combine(_dir, "App.runtimeconfig.json")));
}
