using Corral.Settings;


namespace Corral.Tests;

public class SettingsDocsTests
{
    private const string UpdateVariable = "CORRAL_UPDATE_DOCS";

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Corral.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Corral.slnx not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void Docs_settings_md_is_generated_from_the_table()
    {
        var path = Path.Combine(RepoRoot(), "docs", "settings.md");
        var rendered = SettingsDocs.Render();
        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, rendered);
            return;
        }
        var onDisk = File.Exists(path) ? File.ReadAllText(path) : "";
        Assert.True(onDisk == rendered,
            $"docs/settings.md is not what SettingsDocs.Render() makes from the settings table. Regenerate it with: {UpdateVariable}=1 dotnet test tests/Corral.Tests");
    }

    [Fact]
    public void The_docs_name_every_setting_with_its_flags_and_accepted_form()
    {
        var docs = SettingsDocs.Render();
        foreach (var s in SettingsTable.All)
        {
            Assert.Contains($"### `{s.Name}`", docs);
            foreach (var flag in s.Flags)
            {
                Assert.Contains($"`{flag}`", docs);
            }
        }
        Assert.Contains("`WEB_CONCURRENCY`", docs);
        Assert.Contains("CORRAL_CMD_ARGS", docs);
        Assert.Contains("## Deliberate differences from Gunicorn", docs);
        Assert.Contains("- default: `async`", docs);
        Assert.DoesNotContain("<pid>", docs); // would be read as an HTML tag
    }

    [Fact]
    public void The_config_file_example_of_the_docs_loads()
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", SettingsDocs.ExampleConfig);
        var config = Settings.Ok("-c", file, "App.dll");
        Assert.Equal(4, config.Workers);
        Assert.Equal("gthread", config.WorkerClass.Name);
        Assert.Equal(["unix:/run/myapp/corral.sock", "127.0.0.1:8000"], config.Bind);
    }
}
