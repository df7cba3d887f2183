using System.Text.RegularExpressions;
using Corral.Agent.Os;
using Corral.Settings;

namespace Corral.Tests;

/// <summary>
/// What a new user trips on (#17 item 5): --help shows defaults and accepted values and lists `ctl`;
/// Gunicorn's --preload and --daemon are refused with a reason; -n, --reuse-port and --umask read as
/// Gunicorn's; the process title fits the kernel's 15 bytes.
/// </summary>
public class HelpAndRefusalTests
{
    private static string Help()
    {
        var output = new StringWriter();
        Assert.True(ConfigLoader.Load(["--help"], Settings.NoEnv, output).ShowedHelp);
        // System.CommandLine wraps long descriptions: one line per option makes the checks simple.
        return Regex.Replace(output.ToString(), @"\s+", " ");
    }

    [Fact]
    public void Help_shows_every_default_from_the_table_in_brackets()
    {
        var output = new StringWriter();
        ConfigLoader.Load(["--help"], Settings.NoEnv, output);
        // One option's entry: from its flags to the next option's (a wrapped description continues on indented lines).
        var entries = Regex.Split(output.ToString(), @"\n(?=  -)").Select(e => Regex.Replace(e, @"\s+", " ").Trim()).ToList();
        string Entry(Setting s) => entries.Single(e => Regex.IsMatch(e, $@"^(-\w, )?{Regex.Escape(s.Flags[0])}[ ,]") || e.StartsWith(s.LongFlag + " ", StringComparison.Ordinal));
        Assert.EndsWith("[30]", Entry(SettingsTable.Timeout));
        Assert.EndsWith("[127.0.0.1:8000]", Entry(SettingsTable.Bind));
        Assert.EndsWith("[false]", Entry(SettingsTable.ReusePort));
        foreach (var s in SettingsTable.All.Where(s => s.Flags.Length > 0))
        {
            if (SettingsHelp.Default(s) is { } value)
            {
                Assert.EndsWith($"[{value}]", Entry(s));
            }
            else
            {
                Assert.DoesNotMatch(@"\]$", Entry(s));
            }
        }
    }

    [Fact]
    public void Help_shows_the_words_a_choice_takes()
    {
        var help = Help();
        Assert.Contains("-k, --worker-class <sync|gthread|async>", help);
        Assert.Contains("--log-level <debug|info|warning|error|critical>", help);
        Assert.Contains("--gc <workstation|server|app>", help);
        Assert.Contains("--timeout <SECONDS>", help);
        Assert.Contains("Accepted: a whole number from 1 to 1024, or MIN:MAX (e.g. 1:4) for a count that follows the load. [1]", help);
    }

    [Fact]
    public void Help_lists_ctl_and_new_flags_and_names_no_table_it_does_not_show()
    {
        var help = Help();
        Assert.Contains("Commands: ctl", help);
        Assert.Contains("-n, --name", help);
        Assert.Contains("--reuse-port", help);
        Assert.Contains("-m, --umask", help);
        Assert.DoesNotContain("this table", help);
        Assert.Contains("docs/settings.md", help);
    }

    [Theory]
    [InlineData("--preload")]
    [InlineData("--daemon")]
    [InlineData("-D")]
    public void Preload_and_daemon_are_refused_with_why_and_what_instead(string flag)
    {
        var error = Settings.Error(flag, "App.dll");
        Assert.DoesNotContain("unknown option", error);
        Assert.Contains(flag == "--preload" ? "a .NET runtime cannot fork" : "systemd", error);
        Assert.Equal(error, Settings.Error("-w", "2", flag));
        Assert.EndsWith("(from CORRAL_CMD_ARGS)", Settings.Error(Settings.Env((ConfigLoader.CmdArgsVariable, flag)), "App.dll"));
    }

    [Theory]
    [InlineData("preload_app")]
    [InlineData("preload-app")]
    [InlineData("daemon")]
    public void Preload_app_and_daemon_in_a_config_file_are_refused_with_why(string key)
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", $$"""{ "{{key}}": true }""");
        var error = Settings.Error("-c", file, "App.dll");
        Assert.DoesNotContain("unknown setting", error);
        Assert.Contains(key.StartsWith('p') ? "--preload" : "--daemon", error);
    }

    [Fact]
    public void Ctl_after_other_words_says_it_goes_first()
    {
        Assert.Contains("'ctl' goes first", Settings.Error("-w", "2", "ctl", "status"));
    }

    [Fact]
    public void Name_reuse_port_and_umask_read_as_gunicorns()
    {
        var config = Settings.Ok("-n", "shop", "--reuse-port", "-m", "007", "App.dll");
        Assert.Equal("shop", config.ProcName);
        Assert.True(config.ReusePort);
        Assert.Equal(7, config.Umask);
        var defaults = Settings.Ok("App.dll");
        Assert.Null(defaults.ProcName);
        Assert.False(defaults.ReusePort);
        Assert.Equal(0, defaults.Umask);
        Assert.Contains("control character", Settings.Error("-n", "a\u001bb", "App.dll"));
    }

    [Theory]
    [InlineData(null, "master", "corral: master")]
    [InlineData(null, "worker", "corral: worker")]
    [InlineData("shop", "master", "shop: master")]
    [InlineData("  shop ", "worker", "shop: worker")]
    [InlineData("inventory-api", "worker", "invento: worker")]
    [InlineData("éééé", "master", "ééé: master")]
    public void The_process_title_fits_the_kernels_fifteen_bytes(string? name, string role, string expected)
    {
        var title = ProcessTitle.For(name, role);
        Assert.Equal(expected, title);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(title) <= ProcessTitle.MaxBytes);
    }
}
