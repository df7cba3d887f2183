using Corral.Settings;


namespace Corral.Tests;

/// <summary>Every wrong input is one line that names what is wrong and what is accepted.</summary>
public class SettingsErrorTests
{
    /// <summary>Bad values per setting with a value (bool flags take none), as typed on the command line.</summary>
    private static readonly Dictionary<string, string[]> Bad = new()
    {
        ["bind"] = ["127.0.0.1:http", "a: b", "127.0.0.1:70000", "::1:80", "unix:", "fd://x", "[::1:80", "[nothost]:80", "",
            "300.1.1.1:80", "256.0.0.1", "1.2.3.4.5:80", "10.0.0.999:8000", "bad_host!:80", "exa mple.com:80", "a..b:80", "-lead.example:80", "trail-.example:80", "*:80"],
        ["backlog"] = ["0", "65536", "many", "1.5", ""],
        ["workers"] = ["0", "-1", "1025", "two", "2.0", "4:1", "0:3", "1:x", "1:2:3", "1:1025", ":4", "2:"],
        ["scale_up_after"] = ["-1", "1s"],
        ["scale_down_after"] = ["-1", "x"],
        ["scale_cooldown"] = ["-1", "NaN"],
        ["worker_class"] = ["gevent", "SYNC", ""],
        ["threads"] = ["0", "4097", "x"],
        ["worker_connections"] = ["0", "lots"],
        ["pack_leader_connections"] = ["-1", "half"],
        ["max_requests"] = ["-1", "1e3"],
        ["max_requests_jitter"] = ["-1", "x"],
        ["max_worker_lifetime"] = ["-1", "1h", "NaN"],
        ["max_worker_lifetime_jitter"] = ["-1", "x"],
        ["max_recycle_cpu"] = ["-1", "101", "10%"],
        ["max_worker_memory"] = ["512XB", "-1", "1.5", "10MB", "lots", "1.5.2G", ""],
        ["max_worker_memory_ceiling"] = ["1 PB", "-5M", "big", ""],
        ["spare_workers"] = ["-1", "65", "one"],
        ["warmup_requests"] = ["-1", "1000001", "some"],
        ["warmup_path"] = ["healthz", "/a b", "", "http://x/"],
        ["timeout"] = ["-1", "soon", "NaN", "Infinity", ""],
        ["request_timeout"] = ["-2", "2s", "NaN"],
        ["request_timeout_grace"] = ["-1", "later"],
        ["graceful_timeout"] = ["-0.5", "x"],
        ["keepalive"] = ["-1", "x"],
        ["gc"] = ["concurrent", ""],
        ["jit_profile"] = ["yes", ""],
        ["boot_nice"] = ["-1", "20", "low"],
        ["ready_to_run"] = ["true", ""],
        ["limit_request_line"] = ["8191", "-1", "x"],
        ["limit_request_fields"] = ["32769", "x"],
        ["limit_request_field_size"] = ["-1", "x"],
        ["limit_request_headers_size"] = ["1023", "16777217", "x"],
        ["config"] = ["(a file that does not exist)"],
        ["chdir"] = ["(a directory that does not exist)", ""],
        ["umask"] = ["0o8", "abc", "-1", ""],
        ["proc_name"] = [""],
        ["user"] = ["no-such-user-of-corral", "4294967295", "99999999999", "-1", ""],
        ["group"] = ["no-such-group-of-corral", "4294967295", "-1", ""],
        ["pidfile"] = [""],
        ["raw_env"] = ["NOEQUALS", "=value", ""],
        ["accesslog"] = [""],
        ["access_log_format"] = ["%(nope)s", "%(h", "100%", "%(h)d"],
        ["errorlog"] = [""],
        ["loglevel"] = ["verbose", "INFO2", ""],
        ["reload_extra_files"] = [""],
        ["reload_strategy"] = ["phased", ""],
        ["accept_policy"] = ["spread", ""],
        ["forwarded_allow_ips"] = ["10.0.0.0/33", "not-an-ip", ""],
        ["secure_scheme_headers"] = ["{not json", "[1, 2]"],
        ["http_protocols"] = ["h3", "http2", "h2,h2", "h1,", ""],
        ["certfile"] = ["(a file that does not exist)"],
        ["keyfile"] = ["(a file that does not exist)"],
        ["ca_certs"] = ["(a file that does not exist)"],
        ["control_socket"] = [""],
        ["metrics_bind"] = ["9100", "127.0.0.1:http", "127.0.0.1:70000", "example.com:9100", "::1:9100", ""],
        ["statsd_host"] = ["127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:0", "unix:", "::1:8125", "[::1", "no-such-host.invalid:8125", ""],
        ["statsd_prefix"] = ["a:b", "a|b", "my app", "app@1", ""],
        ["dogstatsd_tags"] = ["env:x|y", "env:a b", ""],
    };

    public static TheoryData<string, string> EveryBadValue()
    {
        var data = new TheoryData<string, string>();
        foreach (var (name, values) in Bad)
        {
            foreach (var v in values)
            {
                data.Add(name, v);
            }
        }
        return data;
    }

    [Fact]
    public void Every_setting_with_a_flag_and_a_value_has_bad_values_to_test()
    {
        Assert.Equal(SettingsTable.All.Where(s => s.Flags.Length > 0 && s.Type != SettingType.Bool).Select(s => s.Name).Order(), Bad.Keys.Order());
    }

    [Theory]
    [MemberData(nameof(EveryBadValue))]
    public void A_bad_value_is_one_line_naming_the_flag_and_the_accepted_form(string name, string value)
    {
        var s = SettingsTable.ByName(name)!;
        if (value.StartsWith('('))
        {
            value = Path.Combine(Path.GetTempPath(), "corral-tests-missing-" + Guid.NewGuid().ToString("N"), "x");
        }
        foreach (var flag in s.Flags)
        {
            // After '=' a value that starts with '-' stays a value; an empty one must be its own word.
            var error = value.StartsWith('-') ? Settings.Error(flag + "=" + value) : Settings.Error(flag, value);
            if (s == SettingsTable.Config)
            {
                // A file that cannot be read is named by its path.
                Assert.Contains("config file " + value, error);
                Assert.Contains("cannot read", error);
                continue;
            }
            Assert.StartsWith($"{s.LongFlag} ({s.Name}): '{value}' is not valid: ", error);
            Assert.Contains(s.Accepted, error);
            Assert.EndsWith("(from the command line)", error);
        }
    }

    [Theory]
    [InlineData("localhost:8000")]
    [InlineData("example.com.:80")]
    [InlineData("my-host_1.internal:80")]
    [InlineData("no-such-host.invalid:80")] // a well-formed name: whether it resolves is learnt at bind time (exit 1)
    [InlineData("127.1:80")] // inet_aton's short form, as getaddrinfo takes it for Gunicorn
    [InlineData("0.0.0.0:80")]
    [InlineData(":80")]
    [InlineData("[::1]:80")]
    public void A_well_formed_host_is_accepted(string bind) => Assert.Equal([bind], Settings.Ok("-b", bind).Bind);

    [Fact]
    public void A_dotted_quad_out_of_range_is_bad_usage_not_an_unresolvable_host()
    {
        var error = Settings.Error("-b", "300.1.1.1:80");
        Assert.Equal("--bind (bind): '300.1.1.1:80' is not valid: '300.1.1.1' is not an IPv4 address (four numbers from 0 to 255, e.g. 127.0.0.1) nor a host name "
            + "(expected HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N) (from the command line)", error);
    }

    [Fact]
    public void A_bad_value_in_corral_cmd_args_or_a_config_file_names_that_source()
    {
        var fromEnv = Settings.Error(Settings.Env((ConfigLoader.CmdArgsVariable, "-b 300.1.1.1:80")), "App.dll");
        Assert.StartsWith("--bind (bind): '300.1.1.1:80' is not valid: ", fromEnv);
        Assert.EndsWith("(from CORRAL_CMD_ARGS)", fromEnv);
        Assert.DoesNotContain("command line", fromEnv);
        Assert.EndsWith("(from CORRAL_CMD_ARGS)", Settings.Error(Settings.Env((ConfigLoader.CmdArgsVariable, "-w two")), "App.dll"));

        using var dir = new TempDir();
        var file = dir.File("corral.json", """{ "bind": ["300.1.1.1:80"] }""");
        var fromFile = Settings.Error("-c", file, "App.dll");
        Assert.StartsWith($"config file {file}: --bind (bind): '300.1.1.1:80' is not valid", fromFile);
    }

    [Fact]
    public void A_bad_value_says_it_came_from_the_command_line()
    {
        var error = Settings.Error("-w", "two");
        Assert.Equal("--workers (workers): 'two' is not valid: expected a whole number from 1 to 1024, or MIN:MAX (e.g. 1:4) for a count that follows the load (from the command line)", error);
    }

    [Theory]
    [InlineData("--wrokers")]
    [InlineData("-W")]
    [InlineData("--daemonize")]
    public void An_unknown_flag_is_an_error_naming_it(string flag)
    {
        var error = Settings.Error(flag, "2", "App.dll");
        Assert.Contains($"'{flag}'", error);
        Assert.Contains("unknown option", error);
        Assert.Contains("command line", error);
    }

    [Theory]
    [InlineData("--daemonize")]
    [InlineData("-X")]
    public void An_unknown_flag_alone_is_not_taken_for_the_app(string flag)
    {
        Assert.Contains($"unknown option '{flag}'", Settings.Error(flag));
        Assert.Contains($"unknown option '{flag}'", Settings.Error("-w", "2", flag, "-b", "127.0.0.1:9000"));
    }

    [Fact]
    public void A_second_app_is_an_error_naming_it()
    {
        var error = Settings.Error("App.dll", "Other.dll");
        Assert.Contains("'Other.dll'", error);
    }

    [Theory]
    [InlineData("-w")]
    [InlineData("--workers")]
    [InlineData("-b")]
    [InlineData("--timeout=")]
    public void A_flag_without_its_value_is_one_line_naming_the_flag(string flag)
    {
        var error = Settings.Error("App.dll", flag);
        Assert.Contains($"'{flag.TrimEnd('=')}'", error);
        Assert.Contains("missing", error);
    }

    [Fact]
    public void A_bool_flag_given_a_word_that_is_no_bool_leaves_the_word_as_the_app()
    {
        // System.CommandLine reads "maybe" as the positional APP, as argparse's store_true would.
        var config = Settings.Ok("--check-config", "maybe");
        Assert.True(config.CheckConfig);
        Assert.Equal("maybe", config.App);
    }

    // ---- the config file --------------------------------------------------------------------

    [Fact]
    public void The_config_file_sets_every_kind_of_value()
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", $$"""
            {
              // comments and trailing commas are allowed
              "app": "App.dll",
              "bind": ["127.0.0.1:9000", "unix:/run/a.sock"],
              "raw_env": "ONE=1",
              "workers": 3,
              "worker-class": "gthread",
              "threads": "8",
              "timeout": 2.5,
              "keepalive": "4",
              "umask": "0o27",
              "chdir": {{System.Text.Json.JsonSerializer.Serialize(dir.Path)}},
              "pidfile": null,
              "loglevel": "warning",
            }
            """);
        var config = Settings.Ok("-c", file);
        Assert.Equal("App.dll", config.App);
        Assert.Equal(["127.0.0.1:9000", "unix:/run/a.sock"], config.Bind);
        Assert.Equal(["ONE=1"], config.RawEnv);
        Assert.Equal(3, config.Workers);
        Assert.Equal("gthread", config.WorkerClass.Name);
        Assert.Equal(8, config.Threads);
        Assert.Equal(TimeSpan.FromSeconds(2.5), config.Timeout);
        Assert.Equal(4.0, config.KeepAlive);
        Assert.Equal(23, config.Umask);
        Assert.Equal(dir.Path, config.Chdir);
        Assert.Null(config.PidFile);
        Assert.Equal("warning", config.LogLevel);
        Assert.All(new[] { SettingsTable.App, SettingsTable.Bind, SettingsTable.Workers, SettingsTable.WorkerClass, SettingsTable.Umask },
            s => Assert.Equal("config file", config.SourceOf(s)));
    }

    [Fact]
    public void An_unknown_key_in_the_config_file_names_the_file_and_the_key()
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", """{"workers": 2, "wrokers": 3}""");
        var error = Settings.Error("-c", file);
        Assert.Contains(file, error);
        Assert.Contains("'wrokers'", error);
        Assert.Contains("unknown setting", error);
    }

    [Theory]
    [InlineData("config")]
    [InlineData("print_config")]
    [InlineData("check_config")]
    public void Command_line_only_settings_are_unknown_in_the_config_file(string key)
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", $$"""{"{{key}}": true}""");
        var error = Settings.Error("-c", file);
        Assert.Contains($"'{key}'", error);
    }

    [Theory]
    [InlineData("{\"workers\": 2,,}")]
    [InlineData("{\"workers\": 2")]
    [InlineData("workers = 2")]
    [InlineData("")]
    [InlineData("{\"workers\": 2}\n{\"x\": 1}")]
    public void Malformed_json_is_one_line_naming_the_file(string text)
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", text);
        var error = Settings.Error("-c", file);
        Assert.Contains("config file " + file, error);
        Assert.Contains("not valid JSON", error);
    }

    [Theory]
    [InlineData("[1, 2]")]
    [InlineData("4")]
    [InlineData("\"workers\"")]
    public void A_config_file_that_is_not_an_object_is_one_line_naming_the_file(string text)
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", text);
        var error = Settings.Error("-c", file);
        Assert.Contains("config file " + file, error);
        Assert.Contains("JSON object", error);
    }

    [Theory]
    [InlineData("workers", "true")]
    [InlineData("workers", "2.5")]
    [InlineData("workers", "[2]")]
    [InlineData("workers", "null")]
    [InlineData("workers", "\"two\"")]
    [InlineData("timeout", "{}")]
    [InlineData("timeout", "false")]
    [InlineData("bind", "8000")]
    [InlineData("bind", "[8000]")]
    [InlineData("bind", "[\"127.0.0.1:x\"]")]
    [InlineData("raw_env", "{\"A\": \"1\"}")]
    [InlineData("raw_env", "[\"NOEQUALS\"]")]
    [InlineData("worker_class", "1")]
    [InlineData("worker_class", "\"gevent\"")]
    [InlineData("loglevel", "null")]
    [InlineData("accesslog", "true")]
    [InlineData("access_log_format", "\"%(zz)s\"")]
    [InlineData("umask", "18")]
    [InlineData("app", "5")]
    [InlineData("app", "[\"App.dll\"]")]
    public void A_wrong_json_type_or_value_is_one_line_naming_the_file_and_the_key(string key, string json)
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", $$"""{"{{key}}": {{json}}}""");
        var error = Settings.Error("-c", file);
        Assert.Contains("config file " + file, error);
        Assert.Contains($"({key})", error);
        Assert.Contains(SettingsTable.ByName(key)!.Accepted, error);
    }

    [Fact]
    public void A_bad_config_file_named_in_corral_cmd_args_is_reported()
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", "{");
        var error = Settings.Error(Settings.Env((ConfigLoader.CmdArgsVariable, "-c " + file)));
        Assert.Contains("config file " + file, error);
    }

    // ---- Line breaks in a bad value (found by fuzz/, the config target) ------------------------

    [Theory]
    [InlineData("PORT", "80\nx")]
    [InlineData("WEB_CONCURRENCY", "4\r\n2")]
    [InlineData(ConfigLoader.CmdArgsVariable, "-b 'a\nb:http'")]
    public void A_bad_value_with_a_line_break_from_the_environment_is_still_one_line(string variable, string value)
    {
        var error = Settings.Error(Settings.Env((variable, value)), "App.dll");
        Assert.Contains("\\n", error);
    }

    [Fact]
    public void A_bad_value_with_a_line_break_on_the_command_line_is_still_one_line()
    {
        var error = Settings.Error("-b", "a\nb:http", "App.dll");
        Assert.Contains("'a\\nb:http'", error);
    }

    [Theory]
    [InlineData("{\"bind\": \"a\\nb:http\"}")]
    [InlineData("{\"workers\": nc77,\n  \"threads\": 2}")]
    [InlineData("{\"raw_env\": [\"A\u2028B\"]}")]
    public void A_bad_config_file_with_a_line_break_in_the_culprit_is_still_one_line(string json)
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", json);
        var error = Settings.Error("-c", file, "App.dll");
        Assert.Contains("config file " + file, error);
        Assert.DoesNotContain('\u2028', error);
    }

    // ---- --print-config ---------------------------------------------------------------------

    [Fact]
    public void Print_config_lists_every_setting_with_its_value_and_source()
    {
        using var dir = new TempDir();
        var file = dir.File("corral.json", """{"backlog": 100}""");
        var env = Settings.Env(("WEB_CONCURRENCY", "3"), (ConfigLoader.CmdArgsVariable, "--timeout 9"));
        var config = Settings.Ok(env, "--print-config", "-c", file, "-b", "127.0.0.1:9000", "-b", "unix:/run/a.sock", "--threads", "2", "App.dll");

        var lines = config.Print().Split('\n', StringSplitOptions.RemoveEmptyEntries);

        string Line(Setting s) => Assert.Single(lines, l => l.StartsWith(s.Name + " ", StringComparison.Ordinal));
        foreach (var s in SettingsTable.All)
        {
            var line = Line(s);
            Assert.Contains(" = ", line);
            Assert.EndsWith($"({config.SourceOf(s)})", line);
        }
        Assert.Equal(SettingsTable.All.Count, lines.Length);
        Assert.Matches(@"^workers +\s= 3  \(env WEB_CONCURRENCY\)$", Line(SettingsTable.Workers));
        Assert.Matches(@"^backlog +\s= 100  \(config file\)$", Line(SettingsTable.Backlog));
        Assert.Matches(@"^timeout +\s= 9  \(CORRAL_CMD_ARGS\)$", Line(SettingsTable.Timeout));
        Assert.Matches(@"^bind +\s= \['127.0.0.1:9000', 'unix:/run/a.sock'\]  \(command line\)$", Line(SettingsTable.Bind));
        Assert.Matches(@"^worker_class +\s= gthread  \(derived from --threads\)$", Line(SettingsTable.WorkerClass));
        Assert.Matches(@"^pidfile +\s= None  \(default\)$", Line(SettingsTable.PidFile));
        Assert.Matches(@"^print_config +\s= True  \(command line\)$", Line(SettingsTable.PrintConfig));
        Assert.Matches(@"^check_config +\s= False  \(default\)$", Line(SettingsTable.CheckConfig));
        Assert.Matches(@"^keepalive +\s= 2  \(default\)$", Line(SettingsTable.KeepAlive));
        Assert.Matches(@"^app +\s= App.dll  \(command line\)$", Line(SettingsTable.App));
    }
}
