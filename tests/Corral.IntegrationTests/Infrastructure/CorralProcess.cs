using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Corral.IntegrationTests.Infrastructure;

/// <summary>
/// A real corral master started by a test: its output is collected line by line, and Dispose kills
/// it and every process it started, whatever state the test left it in.
/// </summary>
public sealed partial class CorralProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly SemaphoreSlim _lineAdded = new(0);
    private readonly HashSet<int> _seenWorkers = [];

    private CorralProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Add(e.Data);
        _process.ErrorDataReceived += (_, e) => Add(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;
    public IReadOnlyList<string> Lines => [.. _lines];
    public string Output => string.Join('\n', _lines);

    public static CorralProcess Start(IEnumerable<string> args, IDictionary<string, string>? env = null, string? cwd = null)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = cwd ?? Directory.GetCurrentDirectory(),
        };
        psi.ArgumentList.Add(TestApps.CorralDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment.Remove("ASPNETCORE_URLS");
        psi.Environment.Remove("WEB_CONCURRENCY");
        psi.Environment.Remove("PORT");
        psi.Environment.Remove("CORRAL_CMD_ARGS");
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        if (env is not null)
        {
            foreach (var (k, v) in env)
            {
                psi.Environment[k] = v;
            }
        }
        return new CorralProcess(Process.Start(psi)!);
    }

    /// <summary>corral started through a wrapper program (e.g. systemd-socket-activate), which execs it.</summary>
    public static CorralProcess StartWrapped(string wrapper, IEnumerable<string> wrapperArgs, IEnumerable<string> corralArgs)
    {
        var psi = new ProcessStartInfo(wrapper) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in wrapperArgs)
        {
            psi.ArgumentList.Add(a);
        }
        psi.ArgumentList.Add(DotnetHost);
        psi.ArgumentList.Add(TestApps.CorralDll);
        foreach (var a in corralArgs)
        {
            psi.ArgumentList.Add(a);
        }
        return new CorralProcess(Process.Start(psi)!);
    }

    private static string DotnetHost => Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "/usr/bin/dotnet";

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }
        _lines.Enqueue(line);
        _lineAdded.Release();
    }

    /// <summary>Waits for a line matching <paramref name="pattern"/> (searched from the start of the output).</summary>
    public async Task<Match> WaitForLineAsync(string pattern, TimeSpan timeout, int occurrence = 1)
    {
        var regex = new Regex(pattern);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var matches = _lines.Select(l => regex.Match(l)).Where(m => m.Success).ToList();
            if (matches.Count >= occurrence)
            {
                return matches[occurrence - 1];
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"no line matching /{pattern}/ (#{occurrence}) within {timeout.TotalSeconds} s. Output:\n{Output}");
            }
            await _lineAdded.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }

    public int CountLines(string pattern) => _lines.Count(l => Regex.IsMatch(l, pattern));

    /// <summary>The first TCP port corral listens on (from "Listening at: http://HOST:PORT", or https:// with --certfile).</summary>
    public async Task<int> PortAsync(TimeSpan? timeout = null)
    {
        var m = await WaitForLineAsync(@"Listening at: https?://[^ ]+:(\d+) ", timeout ?? TimeSpan.FromSeconds(30));
        return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Waits until the master has exactly <paramref name="count"/> children, each of which it logged as
    /// ready ("Worker ready (pid: N)", a debug line: start corral with --log-level debug), and none of
    /// which is in <paramref name="gone"/> (workers just killed: until the master reaps one, it is still
    /// a child and would count).
    /// </summary>
    public async Task<HashSet<int>> WaitForWorkersAsync(int count, TimeSpan timeout, IReadOnlyCollection<int>? gone = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var children = ProcessTree.Children(Pid);
            var ready = _lines.Select(l => ReadyLine().Match(l)).Where(m => m.Success)
                .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToHashSet();
            if (children.Count == count && children.All(ready.Contains) && (gone is null || !children.Overlaps(gone)))
            {
                return children;
            }
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"corral exited ({_process.ExitCode}) while waiting for {count} workers. Output:\n{Output}");
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"expected {count} ready workers within {timeout.TotalSeconds} s; children now: {string.Join(",", children)}. Output:\n{Output}");
            }
            await Task.Delay(50);
        }
    }

    [GeneratedRegex(@"Worker ready \(pid: (\d+)\)")]
    private static partial Regex ReadyLine();

    public void Signal(int signal) => ProcessTree.Kill(Pid, signal);

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        // Polled rather than Process.WaitForExitAsync, which also waits for the end of the output:
        // after a USR2 upgrade the new master keeps the old one's stdout open.
        var deadline = DateTime.UtcNow + timeout;
        while (!_process.HasExited)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"corral did not exit within {timeout.TotalSeconds} s. Output:\n{Output}");
            }
            await Task.Delay(50);
        }
        // Then the rest of its output (the last lines matter: "Reason: ..."). After a USR2 upgrade the
        // output stays open in the new master, so this wait is bounded.
        using var drained = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _process.WaitForExitAsync(drained.Token);
        }
        catch (OperationCanceledException)
        {
        }
        return _process.ExitCode;
    }

    public bool HasExited => _process.HasExited;

    public void Dispose()
    {
        var master = Pid;
        var tree = ProcessTree.Descendants(master);
        // Killed, the runtimes cannot remove their debugger pipes and diagnostics sockets (a test run
        // used to leave thousands in /tmp); the master does this for its workers, not for itself.
        // Their names hold each process's start time: read it while the processes are alive.
        var tmp = Environment.GetEnvironmentVariable("TMPDIR");
        var runtimeFiles = tree.Append(master).Select(pid => Corral.Os.RuntimeFiles.Of(pid, tmp)).OfType<Corral.Os.RuntimeFiles>().ToList();
        if (!_process.HasExited)
        {
            ProcessTree.Kill(master, 9);
        }
        foreach (var pid in tree)
        {
            ProcessTree.Kill(pid, 9);
        }
        _process.WaitForExit(5000);
        _process.Dispose();
        foreach (var files in runtimeFiles)
        {
            files.Remove();
        }
    }
}

/// <summary>Processes as /proc shows them, and kill(2).</summary>
public static partial class ProcessTree
{
    public const int SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGKILL = 9, SIGUSR1 = 10, SIGUSR2 = 12, SIGTERM = 15, SIGTTIN = 21, SIGTTOU = 22, SIGWINCH = 28, SIGCONT = 18, SIGSTOP = 19;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int sig);

    public static bool Kill(int pid, int signal) => SysKill(pid, signal) == 0;

    /// <summary>
    /// SIGSTOP, then waits until every thread of <paramref name="pid"/> is stopped. kill(2) returns
    /// before that: the stop is taken by one thread and passed on to the others, and a thread that
    /// still runs meanwhile can accept one more connection and then hold it, unanswered, while stopped.
    /// </summary>
    public static async Task StopAsync(int pid)
    {
        Assert.True(Kill(pid, SIGSTOP), $"kill -STOP {pid}");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (!AllThreadsStopped(pid))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the threads of {pid} did not all stop within 5 s");
            await Task.Delay(1);
        }
    }

    private static bool AllThreadsStopped(int pid)
    {
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                var text = File.ReadAllText(Path.Combine(task, "stat"));
                if (text[text.LastIndexOf(')') + 2] is not ('T' or 't'))
                {
                    return false;
                }
            }
            catch (IOException)
            {
                // the thread ended meanwhile
            }
        }
        return true;
    }

    public static bool IsAlive(int pid)
    {
        // A zombie is dead for our purposes.
        var stat = ReadStat(pid);
        return stat is not null && stat.Value.State != 'Z';
    }

    public static HashSet<int> Children(int parent)
    {
        var result = new HashSet<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && ReadStat(pid) is { } stat && stat.ParentPid == parent && stat.State != 'Z')
            {
                result.Add(pid);
            }
        }
        return result;
    }

    public static HashSet<int> Descendants(int root)
    {
        var result = new HashSet<int>();
        var queue = new Queue<int>([root]);
        while (queue.Count > 0)
        {
            foreach (var c in Children(queue.Dequeue()))
            {
                if (result.Add(c))
                {
                    queue.Enqueue(c);
                }
            }
        }
        return result;
    }

    private static (char State, int ParentPid)? ReadStat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            var close = text.LastIndexOf(')');
            var fields = text[(close + 2)..].Split(' ');
            return (fields[0][0], int.Parse(fields[1], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }
}
