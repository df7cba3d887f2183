using Corral.Settings;


namespace Corral.Tests;

/// <summary>
/// Gunicorn's order, lowest first: defaults, a setting's env var (WEB_CONCURRENCY, PORT), the -c file,
/// CORRAL_CMD_ARGS, the command line. A higher layer replaces a value, lists included.
/// </summary>
public class SettingsPrecedenceTests
{
    [Fact]
    public void Web_concurrency_sets_the_default_number_of_workers()
    {
        var config = Settings.Ok(Settings.Env(("WEB_CONCURRENCY", "3")));
        Assert.Equal(3, config.Workers);
        Assert.Equal("env WEB_CONCURRENCY", config.SourceOf(SettingsTable.Workers));
        Assert.False(config.IsExplicit(SettingsTable.Workers));
    }

    [Fact]
    public void An_empty_web_concurrency_is_ignored()
    {
        var config = Settings.Ok(Settings.Env(("WEB_CONCURRENCY", ""), ("PORT", "")));
        Assert.Equal(1, config.Workers);
        Assert.Equal(["127.0.0.1:8000"], config.Bind);
    }

    [Fact]
    public void Port_sets_the_default_bind_on_every_interface()
    {
        var config = Settings.Ok(Settings.Env(("PORT", "5000")));
        Assert.Equal(["0.0.0.0:5000"], config.Bind);
        Assert.Equal("env PORT", config.SourceOf(SettingsTable.Bind));
    }

    [Fact]
    public void A_bad_web_concurrency_is_an_error_naming_the_variable()
    {
        var error = Settings.Error(Settings.Env(("WEB_CONCURRENCY", "many")));
        Assert.Contains("--workers", error);
        Assert.Contains("WEB_CONCURRENCY", error);
        Assert.Contains("'many'", error);
        Assert.Contains(SettingsTable.Workers.Accepted, error);
    }

    [Fact]
    public void A_bad_port_is_an_error_naming_the_variable()
    {
        var error = Settings.Error(Settings.Env(("PORT", "http")));
        Assert.Contains("--bind", error);
        Assert.Contains("PORT", error);
    }

    [Fact]
    public void A_bad_env_var_does_not_matter_when_a_higher_layer_sets_the_value()
    {
        // Gunicorn reads WEB_CONCURRENCY as a default: -w on the command line replaces it.
        Assert.Equal(2, Settings.Ok(Settings.Env(("WEB_CONCURRENCY", "3")), "-w", "2").Workers);
    }

    [Fact]
    public void A_bad_port_does_not_matter_when_bind_is_given()
    {
        Assert.Equal(["127.0.0.1:9000"], Settings.Ok(Settings.Env(("PORT", "http")), "-b", "127.0.0.1:9000").Bind);
    }

    [Fact]
    public void Each_layer_overrides_the_one_below()
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", """{"workers": 4, "backlog": 100, "timeout": 7, "max_requests": 9}""");
        var env = Settings.Env(("WEB_CONCURRENCY", "3"), (ConfigLoader.CmdArgsVariable, $"-c {file} --backlog 200 --timeout 8"));

        var config = Settings.Ok(env, "--timeout", "9");

        Assert.Equal(4, config.Workers);                          // file > env var
        Assert.Equal("config file", config.SourceOf(SettingsTable.Workers));
        Assert.Equal(200, config.Backlog);                        // CORRAL_CMD_ARGS > file
        Assert.Equal("CORRAL_CMD_ARGS", config.SourceOf(SettingsTable.Backlog));
        Assert.Equal(TimeSpan.FromSeconds(9), config.Timeout);    // command line > CORRAL_CMD_ARGS
        Assert.Equal("command line", config.SourceOf(SettingsTable.Timeout));
        Assert.Equal(9, config.MaxRequests);                      // only in the file
        Assert.Equal("default", config.SourceOf(SettingsTable.KeepAlive));
        Assert.Equal(file, config.ConfigFile);
        Assert.Equal("CORRAL_CMD_ARGS", config.SourceOf(SettingsTable.Config));
    }

    [Fact]
    public void The_command_line_config_file_wins_over_the_one_in_corral_cmd_args()
    {
        using var dir = new TempDir();
        var a = dir.File("a.json", """{"workers": 2}""");
        var b = dir.File("b.json", """{"workers": 5}""");
        var config = Settings.Ok(Settings.Env((ConfigLoader.CmdArgsVariable, "-c " + a)), "-c", b);
        Assert.Equal(5, config.Workers);
        Assert.Equal(b, config.ConfigFile);
    }

    [Fact]
    public void Port_loses_to_a_bind_in_the_config_file()
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", """{"bind": ["unix:/run/a.sock", "127.0.0.1:9000"]}""");
        var config = Settings.Ok(Settings.Env(("PORT", "5000")), "-c", file);
        Assert.Equal(["unix:/run/a.sock", "127.0.0.1:9000"], config.Bind);
        Assert.Equal("config file", config.SourceOf(SettingsTable.Bind));
    }

    [Fact]
    public void A_higher_layer_replaces_a_list_instead_of_adding_to_it()
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", """{"bind": ["127.0.0.1:9000"], "raw_env": ["A=1", "B=2"]}""");
        var env = Settings.Env((ConfigLoader.CmdArgsVariable, "-b 127.0.0.1:9001 -b 127.0.0.1:9002"));
        var config = Settings.Ok(env, "-c", file, "-e", "C=3");
        Assert.Equal(["127.0.0.1:9001", "127.0.0.1:9002"], config.Bind);
        Assert.Equal(["C=3"], config.RawEnv);
    }

    [Fact]
    public void Corral_cmd_args_can_set_the_app_and_the_command_line_one_wins()
    {
        var env = Settings.Env((ConfigLoader.CmdArgsVariable, "-w 2 Other.dll"));
        Assert.Equal("Other.dll", Settings.Ok(env).App);
        Assert.Equal("App.dll", Settings.Ok(env, "App.dll").App);
        Assert.Equal(2, Settings.Ok(env, "App.dll").Workers);
    }

    [Fact]
    public void Corral_cmd_args_is_split_like_a_shell_does()
    {
        var env = Settings.Env((ConfigLoader.CmdArgsVariable,
            """--access-logformat '%(h)s "%(r)s" %(s)s' -e "GREETING=hello world" -e A=b\ c -e 'Q=it'\''s' -e "D=\"q\" \\ \$x" -w 2"""));
        var config = Settings.Ok(env);
        Assert.Equal("%(h)s \"%(r)s\" %(s)s", config.AccessLogFormat);
        Assert.Equal(["GREETING=hello world", "A=b c", "Q=it's", "D=\"q\" \\ $x"], config.RawEnv);
        Assert.Equal(2, config.Workers);
        Assert.Equal("CORRAL_CMD_ARGS", config.SourceOf(SettingsTable.RawEnv));
    }

    [Fact]
    public void Corral_cmd_args_with_only_whitespace_is_ignored()
    {
        Assert.Equal(1, Settings.Ok(Settings.Env((ConfigLoader.CmdArgsVariable, "  \t "))).Workers);
    }

    [Theory]
    [InlineData("a b", new[] { "a", "b" })]
    [InlineData("  a\t\tb\n c  ", new[] { "a", "b", "c" })]
    [InlineData("'a b' \"c d\"", new[] { "a b", "c d" })]
    [InlineData("a'b'\"c\"d", new[] { "abcd" })]
    [InlineData("'' \"\"", new[] { "", "" })]
    [InlineData("'a\\b'", new[] { "a\\b" })]
    [InlineData("\"a\\b\"", new[] { "a\\b" })]
    [InlineData("\"a\\\"b\"", new[] { "a\"b" })]
    [InlineData("a\\ b", new[] { "a b" })]
    [InlineData("a\\'b", new[] { "a'b" })]
    [InlineData("'$HOME' \"$HOME\"", new[] { "$HOME", "$HOME" })]
    [InlineData("", new string[0])]
    public void Shell_words_split_as_posix_sh_does(string text, string[] expected)
    {
        Assert.Equal(expected, ShellWords.Split(text));
    }

    [Theory]
    [InlineData("-w '2")]
    [InlineData("-e \"A=1")]
    public void An_unclosed_quote_in_corral_cmd_args_is_a_one_line_error(string text)
    {
        var error = Settings.Error(Settings.Env((ConfigLoader.CmdArgsVariable, text)));
        Assert.Contains("CORRAL_CMD_ARGS", error);
        Assert.Contains("unclosed", error);
    }

    [Fact]
    public void An_unknown_option_in_corral_cmd_args_names_it_and_the_variable()
    {
        var error = Settings.Error(Settings.Env((ConfigLoader.CmdArgsVariable, "-w 2 --wrokers 3")));
        Assert.Contains("--wrokers", error);
        Assert.Contains("CORRAL_CMD_ARGS", error);
    }

    [Fact]
    public void A_bad_value_in_corral_cmd_args_names_the_flag()
    {
        var error = Settings.Error(Settings.Env((ConfigLoader.CmdArgsVariable, "--workers lots")));
        Assert.Contains("--workers", error);
        Assert.Contains("'lots'", error);
    }
}
