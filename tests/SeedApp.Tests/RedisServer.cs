using System.Diagnostics;

namespace SeedApp.Tests;

/// <summary>A real redis-server on a free loopback port, in a temporary folder, without persistence.</summary>
public sealed class RedisServer : ChildProcess
{
    public int Port { get; }
    public string? Password { get; }
    private readonly string _dir;

    private RedisServer(ProcessStartInfo psi, int port, string? password, string dir) : base(psi)
    {
        Port = port;
        Password = password;
        _dir = dir;
    }

    public static RedisServer Start(string? password = null)
    {
        var server = ProcessRunner.Which("redis-server") ?? throw Missing("redis-server");
        _ = ProcessRunner.Which("redis-cli") ?? throw Missing("redis-cli");
        var port = FreePort.Next();
        var dir = Directory.CreateTempSubdirectory("seedapp-tests-redis-").FullName;
        var psi = new ProcessStartInfo(server) { WorkingDirectory = dir };
        foreach (var arg in new[] { "--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir })
        {
            psi.ArgumentList.Add(arg);
        }
        if (password is not null)
        {
            psi.ArgumentList.Add("--requirepass");
            psi.ArgumentList.Add(password);
        }
        var redis = new RedisServer(psi, port, password, dir);
        try
        {
            redis.WaitReady();
            return redis;
        }
        catch
        {
            redis.Dispose();
            throw;
        }
    }

    private static InvalidOperationException Missing(string tool) =>
        new($"{tool} is not installed: these tests need a real Redis. Install it with: apt-get install -y redis-server");

    private void WaitReady()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            if (HasExited)
            {
                throw new InvalidOperationException($"redis-server exited at start:\n{Output}");
            }
            if (Cli("PING") == "PONG")
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"redis-server did not answer PING within 10 s:\n{Output}");
            }
            Thread.Sleep(50);
        }
    }

    /// <summary>Runs redis-cli against this server (with the password, if any) and returns its output.</summary>
    public string Cli(params string[] command)
    {
        var args = new List<string> { "-h", "127.0.0.1", "-p", Port.ToString() };
        if (Password is not null)
        {
            args.AddRange(["-a", Password, "--no-auth-warning"]);
        }
        args.AddRange(command);
        return ProcessRunner.Run("redis-cli", args, TimeSpan.FromSeconds(10)).Output.Trim();
    }

    public override void Dispose()
    {
        base.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
