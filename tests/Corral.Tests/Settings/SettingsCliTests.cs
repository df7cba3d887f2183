using Corral.Settings;


namespace Corral.Tests;

/// <summary>Every flag of the table, short and long, parsed from the command line to its typed value.</summary>
public class SettingsCliTests
{
    /// <summary>A valid value per setting (as typed) and what it parses to. Bool flags take no value.</summary>
    private static readonly Dictionary<string, (string? Text, object Expected)> Valid = new()
    {
        ["bind"] = ("unix:/run/app.sock", new List<string> { "unix:/run/app.sock" }),
        ["backlog"] = ("64", 64L),
        ["workers"] = ("3", "3"),
        ["scale_up_after"] = ("0.5", 0.5),
        ["scale_down_after"] = ("60", 60.0),
        ["scale_cooldown"] = ("2", 2.0),
        ["worker_class"] = ("sync", "sync"),
        ["threads"] = ("4", 4L),
        ["worker_connections"] = ("50", 50L),
        ["pack_leader_connections"] = ("32", 32L),
        ["max_requests"] = ("1000", 1000L),
        ["max_requests_jitter"] = ("50", 50L),
        ["max_worker_lifetime"] = ("3600", 3600.0),
        ["max_worker_lifetime_jitter"] = ("2.5", 2.5),
        ["max_recycle_cpu"] = ("25", 25L),
        ["max_worker_memory"] = ("512MB", "512MB"),
        ["max_worker_memory_ceiling"] = ("0", "0"), // alone, only 0 (its default) is valid: MemorySettingsTests has the rest
        ["spare_workers"] = ("2", 2L),
        ["warmup_requests"] = ("200", 200L),
        ["warmup_path"] = ("/healthz?full=1", new List<string> { "/healthz?full=1" }),
        ["timeout"] = ("2.5", 2.5),
        ["request_timeout"] = ("2", 2.0),
        ["request_timeout_grace"] = ("0.5", 0.5),
        ["graceful_timeout"] = ("10", 10.0),
        ["keepalive"] = ("5", 5.0),
        ["gc"] = ("server", "server"),
        ["jit_profile"] = ("on", "on"),
        ["boot_nice"] = ("5", 5L),
        ["ready_to_run"] = ("off", "off"),
        ["limit_request_line"] = ("1024", 1024L),
        ["limit_request_fields"] = ("20", 20L),
        ["limit_request_field_size"] = ("4096", 4096L),
        ["limit_request_headers_size"] = ("131072", 131072L),
        ["config"] = ("(a temporary file)", "(a temporary file)"),
        ["print_config"] = (null, true),
        ["check_config"] = (null, true),
        ["chdir"] = ("(the temporary directory)", "(the temporary directory)"),
        ["umask"] = ("0o22", "0o22"),
        ["reuse_port"] = (null, true),
        ["proc_name"] = ("shop", "shop"),
        // Whoever runs the tests may name their own ids (root may name any; WorkerIdentityTests covers the rest).
        ["user"] = (Os.Accounts.EffectiveUid().ToString(System.Globalization.CultureInfo.InvariantCulture), Os.Accounts.EffectiveUid().ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ["group"] = (Os.Accounts.EffectiveGid().ToString(System.Globalization.CultureInfo.InvariantCulture), Os.Accounts.EffectiveGid().ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ["pidfile"] = ("/run/corral.pid", "/run/corral.pid"),
        ["raw_env"] = ("ASPNETCORE_ENVIRONMENT=Production", new List<string> { "ASPNETCORE_ENVIRONMENT=Production" }),
        ["accesslog"] = ("-", "-"),
        ["access_log_format"] = ("%(h)s %(s)s", "%(h)s %(s)s"),
        ["access_log_json"] = (null, true),
        ["errorlog"] = ("corral.log", "corral.log"),
        ["loglevel"] = ("debug", "debug"),
        ["reload"] = (null, true),
        ["reload_strategy"] = ("rolling", "rolling"),
        ["accept_policy"] = ("kernel", "kernel"),
        ["reload_extra_files"] = ("appsettings.json", new List<string> { "appsettings.json" }),
        ["forwarded_allow_ips"] = ("10.0.0.0/8,127.0.0.1", "10.0.0.0/8,127.0.0.1"),
        ["proxy_protocol"] = (null, true),
        ["http_protocols"] = ("h2,h1", "h2,h1"),
        ["secure_scheme_headers"] = ("{\"X-FORWARDED-PROTO\": \"https\"}", "{\"X-FORWARDED-PROTO\": \"https\"}"),
        // Real PEM files, matched key and certificate: parsed in Deployment.TlsTests (integration).
        ["certfile"] = ("(TLS)", "(TLS)"),
        ["keyfile"] = ("(TLS)", "(TLS)"),
        ["ca_certs"] = ("(TLS)", "(TLS)"),
        ["control_socket"] = ("/run/corral.ctl", "/run/corral.ctl"),
        ["metrics_bind"] = ("127.0.0.1:9100", "127.0.0.1:9100"),
        ["statsd_host"] = ("127.0.0.1:8125", "127.0.0.1:8125"),
        ["statsd_prefix"] = ("service.app", "service.app"),
        ["dogstatsd_tags"] = ("env:prod,app:shop", "env:prod,app:shop"),
    };

    private static bool CoveredByTlsTests(string name) => name is "certfile" or "keyfile" or "ca_certs";

    public static TheoryData<string, string> EveryFlag()
    {
        var data = new TheoryData<string, string>();
        foreach (var s in SettingsTable.All)
        {
            foreach (var flag in s.Flags)
            {
                data.Add(s.Name, flag);
            }
        }
        return data;
    }

    [Fact]
    public void Every_setting_with_a_flag_has_test_data_and_short_and_long_forms_are_known()
    {
        var withFlags = SettingsTable.All.Where(s => s.Flags.Length > 0).Select(s => s.Name).ToHashSet();
        Assert.Equal(withFlags.Order(), Valid.Keys.Order());
        var shortForms = SettingsTable.All.SelectMany(s => s.Flags).Where(f => !f.StartsWith("--", StringComparison.Ordinal)).Order();
        Assert.Equal(["-b", "-c", "-e", "-g", "-k", "-m", "-n", "-p", "-t", "-u", "-w"], shortForms);
    }

    [Theory]
    [MemberData(nameof(EveryFlag))]
    public void Every_flag_parses_to_its_typed_value(string name, string flag)
    {
        if (CoveredByTlsTests(name))
        {
            return;
        }
        using var dir = new TempDir();
        var s = SettingsTable.ByName(name)!;
        var (text, expected) = Valid[name];
        if (name == "config")
        {
            text = dir.File("corral.json", "{}");
            expected = text;
        }
        if (name == "chdir")
        {
            text = dir.Path;
            expected = text;
        }
        var argv = text is null ? new[] { flag } : [flag, text];

        var config = Settings.Ok(argv);

        Assert.Equal(expected, config[s]);
        Assert.Equal("command line", config.SourceOf(s));
        Assert.True(config.IsExplicit(s));
    }

    [Theory]
    [MemberData(nameof(EveryFlag))]
    public void Every_flag_also_takes_its_value_after_an_equals_sign(string name, string flag)
    {
        var (text, expected) = Valid[name];
        if (text is null || name is "config" or "chdir" || CoveredByTlsTests(name))
        {
            return;
        }
        var config = Settings.Ok(flag + "=" + text);
        Assert.Equal(expected, config[SettingsTable.ByName(name)!]);
    }

    [Fact]
    public void Defaults_are_the_table_defaults_with_source_default()
    {
        var config = Settings.Ok();
        foreach (var s in SettingsTable.All)
        {
            Assert.Equal(s.Default, config[s]);
            Assert.Equal("default", config.SourceOf(s));
            Assert.False(config.IsExplicit(s));
        }
        Assert.Equal(["127.0.0.1:8000"], config.Bind);
        Assert.Equal(1, config.Workers);
        Assert.Equal("async", config.WorkerClass.Name);
        Assert.Equal(TimeSpan.FromSeconds(30), config.Timeout);
        Assert.Equal(TimeSpan.FromSeconds(30), config.GracefulTimeout);
        Assert.Equal(2.0, config.KeepAlive);
        Assert.Equal("workstation", config.Gc);
        Assert.Equal(0, config.Umask);
        Assert.Equal("-", config.ErrorLog);
        Assert.Null(config.AccessLog);
        Assert.Null(config.App);
        Assert.Empty(config.RawEnv);
        Assert.Equal(Corral.Agent.Logging.AccessLogFormat.GunicornDefault, config.AccessLogFormat);
    }

    [Fact]
    public void Typed_accessors_read_the_parsed_values()
    {
        var config = Settings.Ok("-w", "3", "-k", "gthread", "--threads", "8", "--worker-connections", "7", "--max-requests", "100",
            "--max-requests-jitter", "10", "-t", "1.5", "--graceful-timeout", "4", "--keep-alive", "0.5", "--backlog", "16",
            "--limit-request-line", "100", "--limit-request-fields", "5", "--limit-request-field_size", "200", "--log-level", "error",
            "--log-file", "err.log", "--access-logfile", "access.log", "-p", "corral.pid", "App.dll");
        Assert.Equal(3, config.Workers);
        Assert.Equal("gthread", config.WorkerClass.Name);
        Assert.Equal(8, config.Threads);
        Assert.Equal(7, config.WorkerConnections);
        Assert.Equal(100, config.MaxRequests);
        Assert.Equal(10, config.MaxRequestsJitter);
        Assert.Equal(TimeSpan.FromSeconds(1.5), config.Timeout);
        Assert.Equal(TimeSpan.FromSeconds(4), config.GracefulTimeout);
        Assert.Equal(0.5, config.KeepAlive);
        Assert.Equal(16, config.Backlog);
        Assert.Equal(100, config.LimitRequestLine);
        Assert.Equal(5, config.LimitRequestFields);
        Assert.Equal(200, config.LimitRequestFieldSize);
        Assert.Equal("error", config.LogLevel);
        Assert.Equal("err.log", config.ErrorLog);
        Assert.Equal("access.log", config.AccessLog);
        Assert.Equal("corral.pid", config.PidFile);
        Assert.Equal("App.dll", config.App);
        Assert.Equal("command line", config.SourceOf(SettingsTable.App));
    }

    [Fact]
    public void The_app_is_the_positional_argument_wherever_it_stands()
    {
        Assert.Equal("App.dll", Settings.Ok("App.dll", "-w", "2").App);
        Assert.Equal("App.dll", Settings.Ok("-w", "2", "App.dll").App);
        Assert.Equal("src/App", Settings.Ok("-w", "2", "src/App", "--threads", "2").App);
    }

    [Fact]
    public void Bind_and_env_are_repeatable_and_keep_their_order()
    {
        var config = Settings.Ok("-b", "127.0.0.1:8001", "--bind", "[::1]:8002", "-b", "unix:/run/a.sock",
            "-e", "A=1", "--env", "B=x=y", "-e", "C=");
        Assert.Equal(["127.0.0.1:8001", "[::1]:8002", "unix:/run/a.sock"], config.Bind);
        Assert.Equal(["A=1", "B=x=y", "C="], config.RawEnv);
    }

    [Fact]
    public void A_later_occurrence_of_a_single_valued_flag_wins()
    {
        Assert.Equal(5, Settings.Ok("-w", "2", "--workers", "5").Workers);
    }

    [Fact]
    public void Threads_above_one_without_k_picks_gthread()
    {
        var config = Settings.Ok("--threads", "4");
        Assert.Equal("gthread", config.WorkerClass.Name);
        Assert.Equal("derived from --threads", config.SourceOf(SettingsTable.WorkerClass));
        Assert.False(config.IsExplicit(SettingsTable.WorkerClass));
    }

    [Theory]
    [InlineData("async")]
    [InlineData("sync")]
    [InlineData("gthread")]
    public void Threads_with_an_explicit_class_keeps_the_class(string workerClass)
    {
        var config = Settings.Ok("-k", workerClass, "--threads", "4");
        Assert.Equal(workerClass, config.WorkerClass.Name);
        Assert.Equal("command line", config.SourceOf(SettingsTable.WorkerClass));
    }

    [Fact]
    public void One_thread_keeps_the_default_class()
    {
        Assert.Equal("async", Settings.Ok("--threads", "1").WorkerClass.Name);
    }

    [Fact]
    public void Threads_from_the_config_file_also_picks_gthread_unless_a_class_is_named()
    {
        using var dir = new TempDir();
        var plain = dir.File("a.json", """{"threads": 3}""");
        Assert.Equal("gthread", Settings.Ok("-c", plain).WorkerClass.Name);
        var named = dir.File("b.json", """{"threads": 3, "worker_class": "async"}""");
        Assert.Equal("async", Settings.Ok("-c", named).WorkerClass.Name);
    }

    [Theory]
    [InlineData("0o22", 18)]
    [InlineData("0O22", 18)]
    [InlineData("022", 18)]
    [InlineData("18", 18)]
    [InlineData("0x12", 18)]
    [InlineData("0", 0)]
    [InlineData("0o777", 511)]
    [InlineData("077", 63)]
    public void Umask_is_read_as_gunicorn_reads_it(string text, int expected)
    {
        Assert.Equal(expected, SettingsTable.ParseUmask(text));
        Assert.Equal(expected, Settings.Ok("--umask", text).Umask);
        Assert.Equal(expected, Settings.Ok("-m", text).Umask); // Gunicorn's short flag
    }

    [Theory]
    [InlineData("0o99")]
    [InlineData("089")]
    [InlineData("abc")]
    [InlineData("0xzz")]
    [InlineData("-1")]
    [InlineData("-0o22")]
    public void Umask_rejects_what_is_not_a_mask(string text)
    {
        var error = Settings.Error("--umask=" + text);
        Assert.Contains("--umask", error);
        Assert.Contains("octal", error);
    }

    [Fact]
    public void Bool_flags_take_an_optional_value()
    {
        Assert.True(Settings.Ok("--print-config").PrintConfig);
        Assert.False(Settings.Ok().PrintConfig);
        Assert.True(Settings.Ok("--check-config", "true").CheckConfig);
        Assert.False(Settings.Ok("--check-config", "false").CheckConfig);
    }

    [Fact]
    public void Help_is_shown_and_no_config_is_made()
    {
        var output = new StringWriter();
        var result = ConfigLoader.Load(["--help"], Settings.NoEnv, output);
        Assert.True(result.ShowedHelp);
        Assert.Null(result.Config);
        Assert.Null(result.Error);
        var help = output.ToString();
        foreach (var flag in SettingsTable.All.SelectMany(s => s.Flags))
        {
            Assert.Contains(flag, help);
        }
    }

    /// <summary>
    /// Help asked for inside a bundle of short flags ("-hw", "-?w") is help, as "-h -w" is: it hid the
    /// other flags' errors from the loader, which then threw reading -w's missing value (found by
    /// fuzz/, the config target).
    /// </summary>
    [Theory]
    [InlineData("-hw")]
    [InlineData("-?w")]
    public void Help_in_a_bundle_of_short_flags_is_shown(string bundle)
    {
        var output = new StringWriter();
        var result = ConfigLoader.Load([bundle], Settings.NoEnv, output);
        Assert.True(result.ShowedHelp);
        Assert.Contains("--workers", output.ToString());
    }

    /// <summary>CORRAL_CMD_ARGS holds settings: help, version or System.CommandLine's [suggest] there is an error naming it, not a stack trace (found by fuzz/).</summary>
    [Theory]
    [InlineData("-?w")]
    [InlineData("-h -w")]
    [InlineData("--version --threads")]
    [InlineData("[suggest] -w")]
    public void Help_or_version_in_corral_cmd_args_is_an_error(string text)
    {
        var error = Settings.Error(Settings.Env((ConfigLoader.CmdArgsVariable, text)), "App.dll");
        Assert.Contains(ConfigLoader.CmdArgsVariable, error);
        Assert.Contains("command line", error);
    }

    /// <summary>
    /// No response files (System.CommandLine's @FILE, which reads arguments from FILE): Gunicorn has
    /// none, a value may start with @, and "@/" in CORRAL_CMD_ARGS threw out of the loader (found by
    /// fuzz/, the config target).
    /// </summary>
    [Fact]
    public void A_value_that_starts_with_at_is_taken_as_it_is()
    {
        Assert.Equal("@%(h)s", Settings.Ok("--access-logformat", "@%(h)s", "App.dll").AccessLogFormat);
    }

    [Fact]
    public void At_a_directory_is_not_read_as_a_response_file()
    {
        Assert.Equal("@/", Settings.Ok("@/").App);
        var config = Settings.Ok(Settings.Env((ConfigLoader.CmdArgsVariable, "--access-logformat @/")), "App.dll");
        Assert.Equal("@/", config.AccessLogFormat);
    }
}
