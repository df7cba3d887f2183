using Corral.Lifecycle;

namespace Corral.Tests;

public sealed class BuildProgressTests
{
    [Theory]
    [InlineData("  Determining projects to restore...", "Determining projects to restore...")]
    [InlineData("  Restored /src/App/App.csproj (in 12.3 sec).", "Restored /src/App/App.csproj (in 12.3 sec).")]
    [InlineData("  All projects are up-to-date for restore.", "All projects are up-to-date for restore.")]
    [InlineData("  App -> /src/App/bin/Release/net10.0/App.dll", "App -> /src/App/bin/Release/net10.0/App.dll")]
    [InlineData("  App -> /tmp/corral-builds-1/publish-1/", "App -> /tmp/corral-builds-1/publish-1/")]
    [InlineData("/src/App/Program.cs(3,1): error CS1002: ; expected [/src/App/App.csproj]", null)]
    [InlineData("/src/App/Program.cs(3,1): warning CS8618: x -> y [/src/App/App.csproj]", null)]
    [InlineData("", null)]
    [InlineData("  Build succeeded.", null)]
    public void DotnetsStepLinesAreShownAndNothingElse(string line, string? step) => Assert.Equal(step, BuildProgress.Step(line));

    [Fact]
    public void AQuietBuildIsSaidToStillRunWithItsElapsedTime()
    {
        Assert.Null(BuildProgress.Heartbeat("publishing", "/src/App/App.csproj", TimeSpan.FromSeconds(25), TimeSpan.FromSeconds(9.9)));
        Assert.Equal("Still publishing App.csproj (25 s)", BuildProgress.Heartbeat("publishing", "/src/App/App.csproj", TimeSpan.FromSeconds(25.2), TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void TheEndSaysHowLongItTook() =>
        Assert.Equal("Published App.csproj in 42.1 s", BuildProgress.Done("Published", "/src/App/App.csproj", TimeSpan.FromSeconds(42.06)));
}
