using Corral.Agent.Contract;

namespace Corral.Lifecycle;

/// <summary>How to start the user's app: `dotnet APP.dll`, or its apphost executable.</summary>
public sealed record AppTarget(string FileName, string[] Arguments, string DisplayPath, string WorkingDirectory)
{
    public sealed class AppException(string message, int exitCode) : Exception(message)
    {
        public int ExitCode { get; } = exitCode;
    }

    /// <summary>
    /// A built app: a .dll runs with the dotnet host, an executable runs as it is (a project is built
    /// first: <see cref="ProjectBuilder"/>). Errors are one line, exit 2: a bad path or an app corral cannot run.
    /// </summary>
    public static AppTarget Resolve(string app) => Inspect(app, Locate(app));

    /// <summary>The file APP names (full path): a .dll, an executable, or a .csproj (a folder's only one); exit 2 if none.</summary>
    public static string Locate(string app) => Locate(app, Path.GetFullPath(app));

    /// <summary>A .csproj: a project to build before it runs.</summary>
    public static bool IsProject(string path) => path.EndsWith(".csproj", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// --check-config: what <see cref="Resolve"/> would refuse (exit 2), without building a project:
    /// throws <see cref="AppException"/>. <paramref name="path"/> is APP's full path.
    /// </summary>
    public static void Check(string app, string path)
    {
        path = Locate(app, path);
        if (!path.EndsWith(".csproj", StringComparison.OrdinalIgnoreCase))
        {
            Inspect(app, path);
        }
    }

    /// <summary>The file APP names: a .dll, an executable, or a .csproj (a folder's only one).</summary>
    private static string Locate(string app, string path)
    {
        if (Directory.Exists(path))
        {
            var projects = Directory.GetFiles(path, "*.csproj");
            path = projects.Length switch
            {
                1 => projects[0],
                0 => throw new AppException($"APP {app}: the folder holds no .csproj (give a built .dll, an apphost or a project)", ExitCodes.Usage),
                _ => throw new AppException($"APP {app}: the folder holds {projects.Length} projects; name the .csproj", ExitCodes.Usage),
            };
        }
        if (!File.Exists(path))
        {
            throw new AppException($"APP {app}: no such file", ExitCodes.Usage);
        }
        return path;
    }

    /// <summary>A built app: how to run it, once its runtimeconfig.json says corral can.</summary>
    private static AppTarget Inspect(string app, string path)
    {
        AppTarget target;
        if (path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
        {
            target = new AppTarget(DotnetHost(), [path], path, Path.GetDirectoryName(path)!);
            if (!File.Exists(target.RuntimeConfigPath))
            {
                throw new AppException($"APP {app}: {Path.GetFileName(path)} has no {Path.GetFileName(target.RuntimeConfigPath)} beside it: it is a library, not a built app", ExitCodes.Usage);
            }
        }
        else if ((File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
        {
            throw new AppException($"APP {app}: not a .dll, a .csproj or an executable", ExitCodes.Usage);
        }
        else
        {
            // An apphost has its runtimeconfig.json beside it; a Native AOT executable has none (and links the agent in).
            target = new AppTarget(path, [], path, Path.GetDirectoryName(path)!);
        }
        // Say so before any worker starts (ProcessHost checks again at each spawn).
        if (RuntimeConfigProblem(app, target.RuntimeConfigPath) is { } problem)
        {
            throw new AppException(problem, ExitCodes.Usage);
        }
        return target;
    }

    /// <summary>The ASP.NET Core shared framework: an app without it has no Kestrel for corral's agent to take over.</summary>
    public const string AspNetCoreFramework = "Microsoft.AspNetCore.App";

    /// <summary>
    /// What is wrong with the runtimeconfig.json beside the app for corral, or null: not an ASP.NET Core
    /// app (a worker service or a console app: no Microsoft.AspNetCore.App among its frameworks), startup
    /// hooks off (the agent cannot load), or not JSON. Checked at start, and again at each spawn: a
    /// release swapped in later through a `current` symlink may be such a build.
    /// </summary>
    public static string? RuntimeConfigProblem(string app, string runtimeConfig)
    {
        string text;
        try
        {
            text = File.ReadAllText(runtimeConfig);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null; // a Native AOT executable has none; a missing app fails at its start
        }
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(text);
            if (!doc.RootElement.TryGetProperty("runtimeOptions", out var options) || options.ValueKind != System.Text.Json.JsonValueKind.Object)
            {
                return null;
            }
            if (Frameworks(options) is { } frameworks && !frameworks.Contains(AspNetCoreFramework, StringComparer.OrdinalIgnoreCase))
            {
                return $"APP {app}: not an ASP.NET Core app: {Path.GetFileName(runtimeConfig)} names no {AspNetCoreFramework} framework"
                    + (frameworks.Count == 0 ? "" : $" (only {string.Join(", ", frameworks)})")
                    + ": a worker service or a console app has no web server for corral to run (corral runs apps built on WebApplication.CreateBuilder, or a generic host with ConfigureWebHostDefaults)";
            }
            if (options.TryGetProperty("configProperties", out var properties)
                && properties.ValueKind == System.Text.Json.JsonValueKind.Object
                && properties.TryGetProperty("System.StartupHookProvider.IsSupported", out var supported)
                && supported.ValueKind == System.Text.Json.JsonValueKind.False)
            {
                return $"APP {app}: {Path.GetFileName(runtimeConfig)} switches startup hooks off (a trimmed or PublishAot build), so corral's agent cannot load: "
                    + "build it with <StartupHookSupport>true</StartupHookSupport>, or publish it as Native AOT with Corral.Agent linked in (docs/deployment.md, \"Native AOT apps\")";
            }
            return null;
        }
        catch (System.Text.Json.JsonException e)
        {
            return $"APP {app}: {Path.GetFileName(runtimeConfig)} is not valid JSON ({e.Message})";
        }
    }

    /// <summary>
    /// The shared frameworks a runtimeconfig.json's runtimeOptions names: framework (one), frameworks
    /// (several) or, for a self-contained app, includedFrameworks; null if it names none of these.
    /// </summary>
    private static List<string>? Frameworks(System.Text.Json.JsonElement options)
    {
        List<string>? names = null;
        foreach (var property in new[] { "framework", "frameworks", "includedFrameworks" })
        {
            if (!options.TryGetProperty(property, out var value))
            {
                continue;
            }
            names ??= [];
            var items = value.ValueKind == System.Text.Json.JsonValueKind.Array ? value.EnumerateArray().ToList() : [value];
            foreach (var item in items)
            {
                if (item.ValueKind == System.Text.Json.JsonValueKind.Object
                    && item.TryGetProperty("name", out var name) && name.ValueKind == System.Text.Json.JsonValueKind.String)
                {
                    names.Add(name.GetString()!);
                }
            }
        }
        return names;
    }

    /// <summary>The runtimeconfig.json that goes with this target (beside a .dll, or an apphost's).</summary>
    public string RuntimeConfigPath => DisplayPath.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
        ? Path.ChangeExtension(DisplayPath, ".runtimeconfig.json")
        : DisplayPath + ".runtimeconfig.json";

    /// <summary>The dotnet host that runs corral, else the one on PATH.</summary>
    public static string DotnetHost()
    {
        var self = Environment.ProcessPath;
        if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            return self;
        }
        var root = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        if (root is not null && File.Exists(Path.Combine(root, "dotnet")))
        {
            return Path.Combine(root, "dotnet");
        }
        return "dotnet";
    }

    public sealed record BuildResult(string? TargetPath, IReadOnlyList<string> Errors, string Summary);

    public static BuildResult ReadBuildResult(string project, int exitCode, string output)
    {
        var lines = output.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        if (exitCode != 0)
        {
            var errors = lines.Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)).Distinct().ToList();
            return new BuildResult(null, errors, $"the build of {project} failed ({errors.Count} error line(s))");
        }
        var target = lines.LastOrDefault(l => l.EndsWith(".dll", StringComparison.OrdinalIgnoreCase));
        return target is not null && File.Exists(target)
            ? new BuildResult(target, [], "built " + target)
            : new BuildResult(null, lines, $"the build of {project} succeeded but did not name its output (.dll)");
    }

    /// <summary>
    /// `dotnet publish -o <paramref name="dir"/>` ended: the app it published (the .dll beside the folder's
    /// only runtimeconfig.json), or the error lines.
    /// </summary>
    public static BuildResult ReadPublishResult(string project, int exitCode, string output, string dir)
    {
        if (exitCode != 0)
        {
            return ReadBuildResult(project, exitCode, output);
        }
        var configs = Directory.Exists(dir) ? Directory.GetFiles(dir, "*.runtimeconfig.json") : [];
        var dll = configs.Length == 1 ? configs[0][..^".runtimeconfig.json".Length] + ".dll" : null;
        return dll is not null && File.Exists(dll)
            ? new BuildResult(dll, [], "published " + dll)
            : new BuildResult(null, [], $"the publish of {project} succeeded but {dir} holds no single app (.dll with its runtimeconfig.json)");
    }

    /// <summary>A project given as APP: the .csproj itself or a folder holding exactly one.</summary>
    public static string? FindProject(string app)
    {
        var path = Path.GetFullPath(app);
        if (path.EndsWith(".csproj", StringComparison.OrdinalIgnoreCase) && File.Exists(path))
        {
            return path;
        }
        if (Directory.Exists(path))
        {
            var projects = Directory.GetFiles(path, "*.csproj");
            return projects.Length == 1 ? projects[0] : null;
        }
        return null;
    }

    /// <summary>A built dll run by the dotnet host from <paramref name="workingDirectory"/>.</summary>
    public static AppTarget ForDll(string dll, string workingDirectory) => new(DotnetHost(), [dll], dll, workingDirectory);
}
