using Corral.Settings;


namespace Corral.Tests;

/// <summary>The files the settings name: a folder that is missing is one line naming the setting and its source (exit 2), before anything starts.</summary>
public sealed class PathChecksTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string? Check(params string[] argv) => PathChecks.Check(Settings.Ok([.. argv, "App.dll"]), _dir.Path);

    [Theory]
    [InlineData("--access-logfile", "--access-logfile (accesslog): '/nonexistent/x' is not valid: no such directory: /nonexistent")]
    [InlineData("--error-logfile", "--error-logfile (errorlog): '/nonexistent/x' is not valid: no such directory: /nonexistent")]
    [InlineData("-p", "--pid (pidfile): '/nonexistent/x' is not valid: no such directory: /nonexistent")]
    [InlineData("--control-socket", "--control-socket (control_socket): '/nonexistent/x' is not valid: no such directory: /nonexistent")]
    public void AFileInAFolderThatDoesNotExistIsAConfigurationError(string flag, string start)
    {
        var error = Check(flag, "/nonexistent/x");
        Assert.NotNull(error);
        Settings.AssertOneLine(error);
        Assert.StartsWith(start, error);
        Assert.EndsWith("(from the command line)", error);
    }

    [Fact]
    public void TheSourceOfTheValueIsNamed()
    {
        var fromEnv = PathChecks.Check(Settings.Ok(Settings.Env((ConfigLoader.CmdArgsVariable, "--access-logfile /nonexistent/a.log")), "App.dll"), _dir.Path);
        Assert.EndsWith("(from CORRAL_CMD_ARGS)", fromEnv);
        var file = _dir.File("corral.json", """{ "accesslog": "/nonexistent/a.log" }""");
        var fromFile = Check("-c", file);
        Assert.EndsWith($"(from the config file {file})", fromFile);
    }

    [Fact]
    public void RelativePathsAreTakenFromWhereCorralWillRun()
    {
        Assert.Contains("no such directory: " + Path.Combine(_dir.Path, "logs"), Check("--access-logfile", "logs/access.log"));
        Directory.CreateDirectory(Path.Combine(_dir.Path, "logs"));
        Assert.Null(Check("--access-logfile", "logs/access.log", "--error-logfile", "logs/error.log", "-p", "logs/corral.pid"));
    }

    [Fact]
    public void StandardStreamsExistingFilesAndDefaultsPass()
    {
        var existing = _dir.File("access.log", "old line\n");
        Assert.Null(Check("--access-logfile", "-", "--error-logfile", "-"));
        Assert.Null(Check("--access-logfile", existing, "--error-logfile", existing));
        Assert.Null(Check());
        Assert.Equal("old line\n", File.ReadAllText(existing));
        Assert.Single(Directory.GetFiles(_dir.Path)); // nothing was created
    }

    [Fact]
    public void ADirectoryOrAFileForAFolderIsSaid()
    {
        Assert.Contains("it is a directory", Check("--access-logfile", _dir.Path));
        var file = _dir.File("plain", "");
        Assert.Contains($"{file} is not a directory", Check("--error-logfile", Path.Combine(file, "error.log")));
    }

    [Fact]
    public void UnixSocketPathsTooLongForTheKernelAreCaught()
    {
        var deep = Path.Combine(_dir.Path, new string('d', 100));
        Directory.CreateDirectory(deep);
        Assert.Contains("over the 108 a unix socket's path may have", Check("-b", "unix:" + Path.Combine(deep, "app.sock")));
        Assert.Contains("--control-socket (control_socket)", Check("--control-socket", Path.Combine(deep, "c.ctl")));
        // The control socket beside the pid file is longer than the pid file's own path.
        var pid = Check("-p", Path.Combine(deep, "corral.pid"));
        Assert.StartsWith("--pid (pidfile)", pid);
        Assert.Contains("PIDFILE.2.ctl during a USR2 upgrade", pid);
        Assert.Null(Check("-p", Path.Combine(deep, "corral.pid"), "--control-socket", Path.Combine(_dir.Path, "c.ctl")));
    }

    [Theory]
    [InlineData("accesslog")]
    [InlineData("errorlog")]
    [InlineData("pidfile")]
    [InlineData("control_socket")]
    public void ANulCharacterFromAConfigFileIsAnErrorNotACrash(string key)
    {
        var file = _dir.File("corral.json", $$"""{ "{{key}}": "a\u0000b" }""");
        var error = Check("-c", file);
        Assert.NotNull(error);
        Settings.AssertOneLine(error);
        Assert.Contains("'a\\0b' is not valid: it holds a NUL character", error);
        Assert.DoesNotContain('\0', error);
    }
}
