using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Corral.IntegrationTests.Infrastructure;
using static Corral.IntegrationTests.Infrastructure.ProcessTree;

namespace Corral.IntegrationTests;

/// <summary>
/// Issue #17 item 5, what a new user tripped on: the app's console lines say which worker wrote them,
/// --help shows defaults and ctl, -n names the processes, --reuse-port shares a port, --preload is
/// refused with a reason, and a unix socket is bound under --umask (0777 by default, as Gunicorn's).
/// Ports 19500-19599.
/// </summary>
public sealed class NewUserTests
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_apps_console_lines_carry_the_pid_of_the_worker_that_wrote_them()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var workers = await corral.WaitForWorkersAsync(2, Boot);
        // Each worker's console logger writes "info: Microsoft.Hosting.Lifetime[14]" and an indented "Now listening on:" line.
        await corral.WaitForLineAsync(@"^\[\d+\]       Now listening on: ", Boot, occurrence: 2);

        var entries = corral.Lines.Select(l => Regex.Match(l, @"^\[(\d+)\] info: Microsoft\.Hosting\.Lifetime\[\d+\]$")).Where(m => m.Success)
            .GroupBy(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(workers.Order(), entries.Keys.Order());
        var continued = corral.Lines.Select(l => Regex.Match(l, @"^\[(\d+)\]       Now listening on: ")).Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToHashSet();
        Assert.Equal(workers.Order(), continued.Order());
        // Nothing of the app's is left without its pid; the master's and the agent's lines carry theirs once.
        Assert.Equal(0, corral.CountLines(@"^(info|warn|fail): |^      Now listening"));
        Assert.Equal(0, corral.CountLines(@"^\[\d+\] \[\d{4}-"));
    }

    [Fact]
    public async Task The_json_console_formatters_lines_stay_one_json_object_each()
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug",
            "-e", "Logging__Console__FormatterName=json", apps.TestApp]);
        var workers = await corral.WaitForWorkersAsync(2, Boot);
        await corral.WaitForLineAsync("Now listening on", Boot, occurrence: 2);

        var lifetime = corral.Lines.Where(l => l.Contains("Microsoft.Hosting.Lifetime", StringComparison.Ordinal)).ToList();
        Assert.True(lifetime.Count >= 2, corral.Output);
        foreach (var line in lifetime)
        {
            using var doc = JsonDocument.Parse(line);
            Assert.Equal("Microsoft.Hosting.Lifetime", doc.RootElement.GetProperty("Category").GetString());
        }
        Assert.Equal(0, corral.CountLines(@"^\[\d+\] \{"));
    }

    [Fact]
    public async Task Help_shows_defaults_and_accepted_values_and_lists_ctl()
    {
        using var corral = CorralProcess.Start(["--help"]);
        Assert.Equal(0, await corral.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var help = corral.Output;
        Assert.Matches(@"-t, --timeout <SECONDS> +A worker silent .*\[30\]\n", help);
        Assert.Matches(@"-w, --workers <N\|MIN:MAX> .*\[1\]\n", help);
        Assert.Contains("-k, --worker-class <sync|gthread|async>", help);
        Assert.Contains("--log-level <debug|info|warning|error|critical>", help);
        Assert.Contains("--gc <workstation|server|app>", help);
        Assert.Matches(@"Commands:\n +ctl ", help);
        Assert.Contains("-n, --name", help);
        Assert.Contains("--reuse-port", help);
        Assert.DoesNotContain("this table", help);
    }

    [Theory]
    [InlineData(null, "corral")]
    [InlineData("inventory-api", "invento")]
    public async Task The_master_and_the_workers_are_named_in_the_process_list(string? name, string shown)
    {
        var apps = await TestApps.GetAsync();
        string[] naming = name is null ? [] : ["-n", name];
        using var corral = CorralProcess.Start([.. naming, "-w", "2", "-b", "127.0.0.1:0", "--log-level", "debug", apps.TestApp]);
        var workers = await corral.WaitForWorkersAsync(2, Boot);

        Assert.Equal($"{shown}: master", Comm(corral.Pid));
        Assert.All(workers, w => Assert.Equal($"{shown}: worker", Comm(w)));
        // ps -e shows the same names; the command line (ps -f) is left as it was.
        Assert.Contains($"{shown}: worker", await RunAsync("ps", "-e", "-o", "pid=,comm="));
        Assert.Contains("corral.dll", File.ReadAllText($"/proc/{corral.Pid}/cmdline"));
        if (name is not null)
        {
            await corral.WaitForLineAsync($@"\[INFO\] Starting corral \S+ \({name}\)$", TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public async Task Two_corrals_with_reuse_port_share_a_port_and_both_serve()
    {
        var apps = await TestApps.GetAsync();
        const int Port = 19510;
        using var first = CorralProcess.Start(["--reuse-port", "-b", $"127.0.0.1:{Port}", "--log-level", "debug", apps.TestApp]);
        var firstWorkers = await first.WaitForWorkersAsync(1, Boot);
        using var second = CorralProcess.Start(["--reuse-port", "-b", $"127.0.0.1:{Port}", "--log-level", "debug", apps.TestApp]);
        var secondWorkers = await second.WaitForWorkersAsync(1, Boot);
        Assert.Equal(Port, await second.PortAsync());

        // The kernel spreads new connections over both sockets by their addresses: some reach each corral.
        var servedBy = new HashSet<int>();
        for (var i = 0; i < 200 && !(servedBy.Overlaps(firstWorkers) && servedBy.Overlaps(secondWorkers)); i++)
        {
            servedBy.Add(int.Parse((await Http.GetAsync(Port, "/pid")).Body, CultureInfo.InvariantCulture));
        }
        Assert.True(servedBy.Overlaps(firstWorkers), "the first corral served nothing");
        Assert.True(servedBy.Overlaps(secondWorkers), "the second corral served nothing");

        // Without it, the port stays taken, as before.
        using var third = CorralProcess.Start(["-b", $"127.0.0.1:{Port}", apps.TestApp]);
        Assert.Equal(1, await third.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"Connection in use: 127.0.0.1:{Port}", third.Output);
    }

    [Theory]
    [InlineData("--preload", "a .NET runtime cannot fork")]
    [InlineData("--daemon", "systemd")]
    public async Task Preload_and_daemon_are_refused_with_one_line_that_says_why(string flag, string why)
    {
        var apps = await TestApps.GetAsync();
        using var corral = CorralProcess.Start(["-w", "2", flag, apps.TestApp]);
        Assert.Equal(2, await corral.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var line = Assert.Single(corral.Lines);
        Assert.StartsWith($"corral: error: {flag}", line);
        Assert.Contains(why, line);
    }

    [Theory]
    [InlineData(null, "777", true)]
    [InlineData("007", "770", false)]
    public async Task A_unix_socket_is_bound_under_umask_and_another_user_connects_by_default(string? umask, string mode, bool nobodyConnects)
    {
        var apps = await TestApps.GetAsync();
        // Under /tmp, in a folder every user may pass through: the socket's own mode decides.
        var dir = Directory.CreateDirectory(Path.Combine("/tmp", "corral-umask-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)Convert.ToInt32("755", 8));
        try
        {
            var socket = Path.Combine(dir, "app.sock");
            string[] mask = umask is null ? [] : ["--umask", umask];
            using var corral = CorralProcess.Start([.. mask, "-b", "unix:" + socket, "--log-level", "debug", apps.TestApp]);
            await corral.WaitForWorkersAsync(1, Boot);

            Assert.Equal(mode, Convert.ToString((int)File.GetUnixFileMode(socket), 8));
            var (exit, output) = await RunWithExitAsync("runuser", "-u", "nobody", "--", "curl", "-sS", "--max-time", "20", "--unix-socket", socket, "http://x/");
            if (nobodyConnects)
            {
                Assert.True(exit == 0, output);
                Assert.Equal("Hello World!", output);
            }
            else
            {
                // curl's 7: it could not connect (connect(2) got EACCES: nobody may not write to the socket).
                Assert.True(exit == 7, $"curl exited {exit}: {output}");
            }
            // The master's own mask is left as it was (0 changes nothing); 007 is its mask from the start, as before.
            var masterMask = Regex.Match(File.ReadAllText($"/proc/{corral.Pid}/status"), @"Umask:\s+(\d+)").Groups[1].Value;
            Assert.Equal(umask is null ? Convert.ToString(CurrentUmask(), 8).PadLeft(4, '0') : "0007", masterMask);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static int CurrentUmask() =>
        Convert.ToInt32(Regex.Match(File.ReadAllText("/proc/self/status"), @"Umask:\s+(\d+)").Groups[1].Value, 8);

    private static string Comm(int pid) => File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n');

    private static async Task<string> RunAsync(string file, params string[] args) => (await RunWithExitAsync(file, args)).Output;

    private static async Task<(int Exit, string Output)> RunWithExitAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill(process.Id, SIGKILL);
            throw;
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}
