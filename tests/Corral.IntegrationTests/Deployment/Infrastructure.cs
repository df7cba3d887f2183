using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Corral.IntegrationTests.Infrastructure;

namespace Corral.IntegrationTests.Deployment;

/// <summary>
/// A real program the deployment tests run beside corral (nginx, redis-server): output collected,
/// a watchdog that kills it if a test hangs, and Dispose that stops it and everything it started.
/// </summary>
public class ExternalProcess : IDisposable
{
    private static readonly TimeSpan Watchdog = TimeSpan.FromMinutes(5);

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly Timer _watchdog;
    private readonly int _stopSignal;
    private int _disposed;

    protected ExternalProcess(ProcessStartInfo psi, int stopSignal = ProcessTree.SIGTERM)
    {
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        _stopSignal = stopSignal;
        _process = new Process { StartInfo = psi };
        _process.OutputDataReceived += (_, e) => Add(e.Data);
        _process.ErrorDataReceived += (_, e) => Add(e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _watchdog = new Timer(_ => Dispose(), null, Watchdog, Timeout.InfiniteTimeSpan);
    }

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public string Output => string.Join('\n', _lines);

    private void Add(string? line)
    {
        if (line is not null)
        {
            _lines.Enqueue(line);
        }
    }

    public static string Which(string tool) =>
        new[] { "/usr/sbin", "/usr/bin", "/sbin", "/bin" }
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            .Select(dir => Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"{tool} is not installed: the deployment tests need it (apt-get install -y nginx redis-server; .ci/run installs both)");

    public virtual void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _watchdog.Dispose();
        var tree = ProcessTree.Descendants(_process.Id);
        if (!_process.HasExited)
        {
            ProcessTree.Kill(_process.Id, _stopSignal);
            if (!_process.WaitForExit(3000))
            {
                ProcessTree.Kill(_process.Id, ProcessTree.SIGKILL);
            }
        }
        foreach (var pid in tree)
        {
            ProcessTree.Kill(pid, ProcessTree.SIGKILL);
        }
        _process.WaitForExit(5000);
        _process.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A real redis-server on a free loopback port, without persistence, in its own folder.</summary>
public sealed class RedisServer : ExternalProcess
{
    public int Port { get; }

    private RedisServer(ProcessStartInfo psi, int port) : base(psi) => Port = port;

    /// <summary>Starts redis-server on 127.0.0.1 and on <paramref name="alsoBind"/> (e.g. test hosts' gateways).</summary>
    public static async Task<RedisServer> StartAsync(string dir, params string[] alsoBind)
    {
        var port = FreePort.Next();
        var psi = new ProcessStartInfo(Which("redis-server")) { WorkingDirectory = dir };
        foreach (var a in new[] { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1" }
            .Concat(alsoBind)
            .Concat(["--protected-mode", alsoBind.Length > 0 ? "no" : "yes", "--save", "", "--appendonly", "no", "--dir", dir]))
        {
            psi.ArgumentList.Add(a);
        }
        var redis = new RedisServer(psi, port);
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (await redis.CommandAsync("PING") != "+PONG")
            {
                if (redis.HasExited || DateTime.UtcNow > deadline)
                {
                    throw new InvalidOperationException($"redis-server did not answer PING within 10 s:\n{redis.Output}");
                }
                await Task.Delay(50);
            }
            return redis;
        }
        catch
        {
            redis.Dispose();
            throw;
        }
    }

    /// <summary>One inline command over RESP; the first reply line (e.g. "+PONG", ":3", "$1"), then the bulk value if any.</summary>
    public async Task<string?> CommandAsync(string command)
    {
        try
        {
            using var client = new TcpClient();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await client.ConnectAsync(IPAddress.Loopback, Port, cts.Token);
            await using var stream = client.GetStream();
            using var reader = new StreamReader(stream);
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(command + "\r\n"), cts.Token);
            var first = await reader.ReadLineAsync(cts.Token);
            if (first is not null && first.StartsWith('$') && first != "$-1")
            {
                return await reader.ReadLineAsync(cts.Token);
            }
            return first;
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            return null;
        }
    }
}

/// <summary>
/// A real nginx in the foreground (daemon off), its prefix, pid, logs and temp paths in a folder of
/// the test, serving a server configuration on a free loopback port.
/// </summary>
public sealed class Nginx : ExternalProcess
{
    public string Dir { get; }
    public string AccessLog => Path.Combine(Dir, "access.log");
    public string ErrorLog => Path.Combine(Dir, "error.log");

    private Nginx(ProcessStartInfo psi, string dir) : base(psi, ProcessTree.SIGQUIT) => Dir = dir;

    /// <summary>
    /// Starts nginx with <paramref name="serverConfig"/> (upstreams and server blocks) in its http context,
    /// and <paramref name="mainConfig"/> (load_module, stream { }) in its main context.
    /// </summary>
    public static async Task<Nginx> StartAsync(string dir, string serverConfig, int port, string mainConfig = "")
    {
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, "temp");
        Directory.CreateDirectory(temp);
        File.WriteAllText(Path.Combine(dir, "corral.conf"), serverConfig);
        // As root, the workers would run as nobody, who may not reach the test's socket and files.
        var user = Environment.UserName == "root" ? "user root root;\n" : "";
        File.WriteAllText(Path.Combine(dir, "nginx.conf"), $$"""
            {{user}}worker_processes 1;
            {{mainConfig}}
            error_log {{dir}}/error.log info;
            events { worker_connections 256; }
            http {
                types { text/plain txt; text/html html; text/css css; application/javascript js; }
                default_type application/octet-stream;
                access_log {{dir}}/access.log;
                client_body_temp_path {{temp}}/client_body;
                proxy_temp_path {{temp}}/proxy;
                fastcgi_temp_path {{temp}}/fastcgi;
                uwsgi_temp_path {{temp}}/uwsgi;
                scgi_temp_path {{temp}}/scgi;
                include {{dir}}/corral.conf;
            }
            """);
        var psi = new ProcessStartInfo(Which("nginx")) { WorkingDirectory = dir };
        foreach (var a in new[] { "-p", dir + "/", "-c", Path.Combine(dir, "nginx.conf"), "-e", Path.Combine(dir, "error.log"), "-g", $"daemon off; pid {dir}/nginx.pid;" })
        {
            psi.ArgumentList.Add(a);
        }
        var nginx = new Nginx(psi, dir);
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (!await Listens(port))
            {
                if (nginx.HasExited || DateTime.UtcNow > deadline)
                {
                    var errors = File.Exists(nginx.ErrorLog) ? File.ReadAllText(nginx.ErrorLog) : "";
                    throw new InvalidOperationException($"nginx did not listen on {port} within 10 s:\n{nginx.Output}\n{errors}");
                }
                await Task.Delay(50);
            }
            return nginx;
        }
        catch
        {
            nginx.Dispose();
            throw;
        }
    }

    private static async Task<bool> Listens(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
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

/// <summary>A temporary folder for one test, removed (best effort) at the end.</summary>
public sealed class TempDir : IDisposable
{
    // Short: a unix socket path must fit in 108 bytes.
    public string Path { get; } = Directory.CreateTempSubdirectory("crl-").FullName;

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>HTTP clients for the deployment tests: over a unix socket, or from a chosen loopback source address.</summary>
public static class Clients
{
    public static HttpClient OverUnixSocket(string socketPath) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        BaseAddress = new Uri("http://localhost"),
        Timeout = TimeSpan.FromSeconds(20),
    };

    /// <summary>A client whose connections come from <paramref name="source"/> (any 127.x.y.z is this machine's loopback).</summary>
    public static HttpClient From(IPAddress source) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, ct) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(new IPEndPoint(source, 0));
                await socket.ConnectAsync(context.DnsEndPoint, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        Timeout = TimeSpan.FromSeconds(20),
    };
}

/// <summary>examples/SeedApp published once per test run (as a deployment would: the .dll with its wwwroot beside it).</summary>
public static class SeedAppPublish
{
    private static readonly Lazy<Task<string>> s_dir = new(PublishAsync);

    /// <summary>The folder holding SeedApp.dll and wwwroot/.</summary>
    public static Task<string> GetAsync() => s_dir.Value;

    private static async Task<string> PublishAsync()
    {
        var output = Scratch.NewDirectory("corral-seedapp-");
        var artifacts = Scratch.NewDirectory("corral-seedapp-build-");
        var project = Path.Combine(TestApps.RepoRoot, "examples", "SeedApp", "SeedApp.csproj");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "publish", project, "-c", "Release", "-o", output, "--artifacts-path", artifacts, "--nologo", "-v", "q", "-p:UseSharedCompilation=false", "--disable-build-servers" })
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("dotnet publish SeedApp took over 5 minutes");
        }
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish SeedApp failed ({p.ExitCode}):\n{await stdout}\n{await stderr}");
        }
        return output;
    }
}
