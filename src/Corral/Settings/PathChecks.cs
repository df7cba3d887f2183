using System.Net.Sockets;
using Corral.Os;

namespace Corral.Settings;

/// <summary>
/// The files and folders the settings name, checked before anything starts, by --check-config, and
/// at a reload: a log file, pid file or socket corral could not create is a configuration error (exit
/// 2, one line naming the setting and where its value came from), not a stack trace from a worker or
/// the master once it runs. Only what can be known without side effects: nothing is created here.
/// </summary>
public static class PathChecks
{
    /// <summary>
    /// The first problem, or null. Relative paths are taken from <paramref name="directory"/>: where
    /// corral will run (--chdir, resolved against the current directory, or the current directory).
    /// </summary>
    public static string? Check(CorralConfig config, string directory)
    {
        string Full(string path) => Path.GetFullPath(path, directory);

        // A config file's JSON can hold one; no path can (Path.GetFullPath would throw).
        var paths = new (Setting Setting, string? Value)[]
        {
            (SettingsTable.ErrorLog, config.ErrorLog), (SettingsTable.AccessLog, config.AccessLog), (SettingsTable.PidFile, config.PidFile),
            (SettingsTable.ControlSocket, config.IsExplicit(SettingsTable.ControlSocket) ? config.ControlSocket : null),
        }.Concat(config.Bind.Select(b => (SettingsTable.Bind, (string?)b)));
        foreach (var (setting, value) in paths)
        {
            if (value is not null && value.Contains('\0'))
            {
                return Error(config, setting, value.Replace("\0", "\\0"), "it holds a NUL character");
            }
        }

        if (config.ErrorLog != "-" && WritableFile(Full(config.ErrorLog)) is { } errorLog)
        {
            return Error(config, SettingsTable.ErrorLog, config.ErrorLog, errorLog);
        }
        if (config.AccessLog is { } accessLog && accessLog != "-" && WritableFile(Full(accessLog)) is { } access)
        {
            return Error(config, SettingsTable.AccessLog, accessLog, access);
        }
        if (config.PidFile is { } pidFile)
        {
            // Written as a temp file beside it, renamed into place (Corral.Lifecycle.PidFile).
            if (ReplaceableFile(Full(pidFile)) is { } pid)
            {
                return Error(config, SettingsTable.PidFile, pidFile, pid);
            }
        }
        if (config.IsExplicit(SettingsTable.ControlSocket) && config.ControlSocket is { } controlSocket)
        {
            if ((ReplaceableFile(Full(controlSocket)) ?? SocketPath(Full(controlSocket))) is { } control)
            {
                return Error(config, SettingsTable.ControlSocket, controlSocket, control);
            }
        }
        else if (config.PidFile is { } pid)
        {
            // The control socket beside the pid file; after USR2 the new master's is PIDFILE.2.ctl, the longer name.
            if (SocketPathTooLong(Full(pid) + ".2.ctl") is { } bytes)
            {
                return Error(config, SettingsTable.PidFile, pid, $"the control socket beside it, PIDFILE.ctl (PIDFILE.2.ctl during a USR2 upgrade), would be {bytes} bytes long, over the {MaxSocketPath} a unix socket's path may have; give a shorter path or --control-socket");
            }
        }
        foreach (var bind in config.Bind)
        {
            if (Listeners.BindAddress.TryParse(bind, out var address, out _) && address!.Kind == Listeners.BindKind.Unix
                && SocketPath(Full(address.Path!)) is { } socket)
            {
                return Error(config, SettingsTable.Bind, bind, socket);
            }
        }
        return null;
    }

    /// <summary>A file corral opens to append (a log): its folder exists, and it can be written or created there.</summary>
    public static string? WritableFile(string path)
    {
        if (Directory.Exists(path))
        {
            return "it is a directory";
        }
        if (Folder(path) is { } folderProblem)
        {
            return folderProblem;
        }
        if (File.Exists(path))
        {
            return Native.Access(path, Native.W_OK) is { } why ? $"cannot write to it: {why}" : null;
        }
        var dir = Path.GetDirectoryName(path)!;
        return Native.Access(dir, Native.W_OK | Native.X_OK) is { } cannot ? $"cannot create it in {dir}: {cannot}" : null;
    }

    /// <summary>A file corral creates beside its name and renames (or binds) into place: its folder exists and is writable.</summary>
    public static string? ReplaceableFile(string path)
    {
        if (Directory.Exists(path))
        {
            return "it is a directory";
        }
        if (Folder(path) is { } folderProblem)
        {
            return folderProblem;
        }
        var dir = Path.GetDirectoryName(path)!;
        return Native.Access(dir, Native.W_OK | Native.X_OK) is { } cannot ? $"cannot create files in {dir}: {cannot}" : null;
    }

    /// <summary>The most bytes a unix socket's path may have (sun_path), as .NET's UnixDomainSocketEndPoint takes it.</summary>
    public const int MaxSocketPath = 108;

    /// <summary>A unix socket's path: null if the kernel takes it, else why not.</summary>
    public static string? SocketPath(string path) => SocketPathTooLong(path) is { } bytes
        ? $"{path} is {bytes} bytes long, over the {MaxSocketPath} a unix socket's path may have"
        : null;

    private static int? SocketPathTooLong(string path)
    {
        try
        {
            _ = new UnixDomainSocketEndPoint(path);
            return null;
        }
        catch (ArgumentException)
        {
            return System.Text.Encoding.UTF8.GetByteCount(path);
        }
    }

    private static string? Folder(string path)
    {
        var dir = Path.GetDirectoryName(path);
        if (dir is null || Directory.Exists(dir))
        {
            return null;
        }
        return File.Exists(dir) ? $"{dir} is not a directory" : $"no such directory: {dir}";
    }

    private static string Error(CorralConfig config, Setting setting, string value, string reason)
    {
        var source = config.SourceOf(setting);
        var from = source switch
        {
            "command line" => "the command line",
            "config file" => $"the config file {config.ConfigFile}",
            _ => source,
        };
        return new SettingException(setting, value, $"{new SettingException(setting, value, reason).Reason} (from {from})").Message;
    }
}
