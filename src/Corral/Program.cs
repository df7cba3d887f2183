using System.Collections;
using Corral;
using Corral.Agent.Contract;
using Corral.Lifecycle;
using Corral.Logging;
using Corral.Os;
using Corral.Settings;

// corral [OPTIONS] APP — exit codes (ExitCodes): 0 stopped cleanly, 1 runtime error (bind, build), 2 bad
// usage or configuration, 3 a worker failed to boot.

// Gunicorn installs its handlers whatever the shell left ignored (INT and QUIT after `&` in a script,
// HUP under nohup): so does corral, before .NET's signal handling starts and keeps them ignored.
foreach (var signal in Signals.Handled)
{
    Corral.Agent.Os.InheritedSignals.Unignore(signal);
}
if (args is ["ctl", ..])
{
    return Corral.Control.CtlCommand.Run(args[1..], Console.Out, Console.Error);
}
var env = Environment.GetEnvironmentVariables().Cast<DictionaryEntry>()
    .ToDictionary(e => (string)e.Key, e => (string?)e.Value);

var loaded = ConfigLoader.Load(args, env);
if (loaded.ShowedHelp)
{
    return ExitCodes.Ok;
}
if (loaded.Config is not { } config)
{
    Console.Error.WriteLine($"corral: error: {loaded.Error}");
    return ExitCodes.Usage;
}
if (config.PrintConfig)
{
    Console.Write(config.Print());
    return ExitCodes.Ok;
}
if (config.App is null)
{
    Console.Error.WriteLine("corral: error: no APP given: corral [OPTIONS] path/to/App.dll (or a project); see corral --help");
    return ExitCodes.Usage;
}
// The files the settings name (logs, pid file, sockets), from where corral will run.
if (PathChecks.Check(config, Path.GetFullPath(config.Chdir ?? ".")) is { } pathError)
{
    Console.Error.WriteLine($"corral: error: {pathError}");
    return ExitCodes.Usage;
}
if (config.CheckConfig)
{
    var path = Path.GetFullPath(config.Chdir is null ? config.App : Path.Combine(config.Chdir, config.App));
    try
    {
        // What the start would refuse (exit 2) short of building a project: the file, its runtimeconfig.json.
        AppTarget.Check(config.App, path);
    }
    catch (AppTarget.AppException e)
    {
        Console.Error.WriteLine($"corral: error: {e.Message}");
        return ExitCodes.Usage;
    }
    Console.WriteLine("corral: configuration OK");
    return ExitCodes.Ok;
}

var originalDirectory = Directory.GetCurrentDirectory();
if (config.Chdir is not null)
{
    Directory.SetCurrentDirectory(config.Chdir);
}
if (config.Umask != 0)
{
    Native.SetUmask(config.Umask);
}

MasterLog log;
try
{
    log = new MasterLog(config.ErrorLog, config.LogLevel);
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"corral: error: --error-logfile {config.ErrorLog}: {e.Message}");
    return ExitCodes.Usage;
}

// HUP re-reads everything from the same sources: the config file, CORRAL_CMD_ARGS, the command line.
// The statsd host's last address stands in if its lookup fails now (a resolver down must not fail a deploy).
var statsd = config.StatsdHost is { } host && config.StatsdTarget is { } target ? new StatsdFallback(host, target) : null;
CorralConfig? Reload()
{
    var current = Environment.GetEnvironmentVariables().Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (string?)e.Value);
    var again = ConfigLoader.Load(args, current, statsdFallback: statsd);
    foreach (var warning in again.Warnings)
    {
        log.Warning($"Reload: {warning}");
    }
    if (again.Config is { StatsdHost: { } h, StatsdTarget: { } t })
    {
        statsd = new StatsdFallback(h, t);
    }
    if (again.Config is null)
    {
        log.Error($"Reload: {again.Error}");
    }
    else if (PathChecks.Check(again.Config, Directory.GetCurrentDirectory()) is { } pathError)
    {
        // Relative paths: the current directory is --chdir's by now.
        log.Error($"Reload: {pathError}");
        return null;
    }
    else if (!again.Config.Bind.SequenceEqual(config.Bind))
    {
        log.Warning("Reload: a changed --bind needs a restart (or a USR2 upgrade); keeping the current listeners");
    }
    if (again.Config is not null)
    {
        FileOwnership.HandOverLogs(again.Config, log);
    }
    return again.Config;
}

return new Master(Reload, originalDirectory).Run(config, log, env);
