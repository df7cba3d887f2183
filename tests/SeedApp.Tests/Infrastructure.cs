using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace SeedApp.Tests;

/// <summary>Builds examples/SeedApp once per test run, into a folder of its own.</summary>
public static class SeedAppBuild
{
    private static readonly Lazy<string> Dll = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Full path of the built SeedApp.dll.</summary>
    public static string Path => Dll.Value;

    private static string Build()
    {
        var project = System.IO.Path.Combine(RepoRoot(), "examples", "SeedApp", "SeedApp.csproj");
        // An artifacts folder of our own: no clash with a build of the solution going on at the same time.
        var artifacts = Directory.CreateTempSubdirectory("seedapp-tests-build-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(artifacts);
        var result = ProcessRunner.Run(Dotnet.Path,
            ["build", project, "-c", "Release", "--artifacts-path", artifacts, "-nologo", "-v", "quiet"],
            TimeSpan.FromMinutes(5));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"Building SeedApp failed (exit {result.ExitCode}):\n{result.Output}");
        }
        var dll = Directory.GetFiles(System.IO.Path.Combine(artifacts, "bin"), "SeedApp.dll", SearchOption.AllDirectories)
            .SingleOrDefault() ?? throw new InvalidOperationException($"SeedApp.dll not found under {artifacts}/bin");
        return dll;
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
        catch (UnauthorizedAccessException)
        {
            // best effort
        }
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "examples", "SeedApp", "SeedApp.csproj")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("examples/SeedApp/SeedApp.csproj not found above " + AppContext.BaseDirectory);
    }
}

public static class Dotnet
{
    /// <summary>The dotnet host running these tests (the SDK sets DOTNET_HOST_PATH), else dotnet from PATH.</summary>
    public static string Path =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
}

public static class FreePort
{
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

public sealed record RunResult(int ExitCode, string Output);

public static class ProcessRunner
{
    /// <summary>Runs a short command to its end, killing it after <paramref name="timeout"/>.</summary>
    public static RunResult Run(string file, IEnumerable<string> args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {timeout}");
        }
        process.WaitForExit();
        return new RunResult(process.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>The full path of <paramref name="tool"/> on PATH, or null.</summary>
    public static string? Which(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => System.IO.Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists);
}

/// <summary>A long-running child process whose output is collected line by line and which dies with the test.</summary>
public abstract class ChildProcess : IDisposable
{
    // No child outlives a hung test run by much.
    private static readonly TimeSpan Watchdog = TimeSpan.FromMinutes(3);

    private readonly List<string> _lines = [];
    private readonly CancellationTokenSource _watchdog = new(Watchdog);
    protected Process Process { get; }

    protected ChildProcess(ProcessStartInfo psi)
    {
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        Process = new Process { StartInfo = psi };
        Process.OutputDataReceived += (_, e) => Add(e.Data);
        Process.ErrorDataReceived += (_, e) => Add(e.Data);
        Process.Start();
        Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
        _watchdog.Token.Register(Kill);
    }

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public string Output => string.Join('\n', Lines);

    public bool HasExited => Process.HasExited;

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_lines)
        {
            _lines.Add(line);
        }
    }

    /// <summary>Waits for the process to end; its exit code, or a TimeoutException (the process is then killed).</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await Process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"the process did not exit within {timeout}; output:\n{Output}");
        }
        Process.WaitForExit(); // drains the output handlers
        return Process.ExitCode;
    }

    /// <summary>Waits until a line satisfies <paramref name="predicate"/> (logs are written asynchronously).</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var hit = Lines.FirstOrDefault(predicate);
            if (hit is not null)
            {
                return hit;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no such output line within the time; output:\n{Output}");
            }
            await Task.Delay(50);
        }
    }

    private void Kill()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    public virtual void Dispose()
    {
        Kill();
        _watchdog.Dispose();
        Process.Dispose();
        GC.SuppressFinalize(this);
    }
}
