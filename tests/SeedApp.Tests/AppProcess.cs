using System.Diagnostics;

namespace SeedApp.Tests;

/// <summary>SeedApp running as a real process: <c>dotnet SeedApp.dll --urls http://127.0.0.1:PORT</c>.</summary>
public sealed class AppProcess : ChildProcess
{
    public int Port { get; }
    public HttpClient Client { get; }

    private AppProcess(ProcessStartInfo psi, int port) : base(psi)
    {
        Port = port;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>Starts the app in <paramref name="environment"/> with these environment variables (and no inherited app settings).</summary>
    public static AppProcess Start(string environment, IReadOnlyDictionary<string, string>? variables = null)
    {
        var dll = SeedAppBuild.Path;
        var port = FreePort.Next();
        var psi = new ProcessStartInfo(Dotnet.Path) { WorkingDirectory = Path.GetDirectoryName(dll)! };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add($"http://127.0.0.1:{port}");
        foreach (var key in psi.Environment.Keys.ToList())
        {
            if (key.StartsWith("ASPNETCORE_", StringComparison.Ordinal) || key is "DOTNET_ENVIRONMENT" or "DOTNET_STARTUP_HOOKS"
                || key.StartsWith("Redis__", StringComparison.OrdinalIgnoreCase) || key.StartsWith("App__", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("Logging__", StringComparison.OrdinalIgnoreCase))
            {
                psi.Environment.Remove(key);
            }
        }
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = environment;
        foreach (var (key, value) in variables ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }
        return new AppProcess(psi, port);
    }

    /// <summary>Waits until the app answers <c>/</c>; fails with its output if it exits or takes too long.</summary>
    public async Task WaitReadyAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            if (HasExited)
            {
                throw new InvalidOperationException($"SeedApp exited at start:\n{Output}");
            }
            try
            {
                using var response = await Client.GetAsync("/");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"SeedApp did not answer within 30 s:\n{Output}");
            }
            await Task.Delay(100);
        }
    }

    public override void Dispose()
    {
        Client.Dispose();
        base.Dispose();
    }
}
