using Corral.Settings;


namespace Corral.Tests;

/// <summary>Calls <see cref="ConfigLoader.Load"/> the way Program.cs does, with a made-up environment.</summary>
internal static class Settings
{
    public static readonly IReadOnlyDictionary<string, string?> NoEnv = new Dictionary<string, string?>();

    public static LoadResult Load(params string[] argv) => ConfigLoader.Load(argv, NoEnv, TextWriter.Null);

    public static LoadResult Load(IReadOnlyDictionary<string, string?> env, params string[] argv) =>
        ConfigLoader.Load(argv, env, TextWriter.Null);

    public static CorralConfig Ok(params string[] argv) => Ok(NoEnv, argv);

    public static CorralConfig Ok(IReadOnlyDictionary<string, string?> env, params string[] argv)
    {
        var result = ConfigLoader.Load(argv, env, TextWriter.Null);
        Assert.True(result.Error is null, $"unexpected error: {result.Error}");
        return result.Config!;
    }

    public static string Error(params string[] argv) => Error(NoEnv, argv);

    public static string Error(IReadOnlyDictionary<string, string?> env, params string[] argv)
    {
        var result = ConfigLoader.Load(argv, env, TextWriter.Null);
        Assert.True(result.Config is null, $"expected an error for: {string.Join(' ', argv)}");
        Assert.NotNull(result.Error);
        AssertOneLine(result.Error);
        return result.Error;
    }

    public static void AssertOneLine(string text)
    {
        Assert.False(string.IsNullOrWhiteSpace(text));
        Assert.DoesNotContain('\n', text);
        Assert.DoesNotContain('\r', text);
    }

    public static Dictionary<string, string?> Env(params (string Key, string? Value)[] pairs) =>
        pairs.ToDictionary(p => p.Key, p => p.Value);
}

/// <summary>A temporary directory, removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "corral-tests-" + Guid.NewGuid().ToString("N"));

    public string File(string name, string contents)
    {
        var path = System.IO.Path.Combine(Path, name);
        System.IO.File.WriteAllText(path, contents);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
