using System.Globalization;
using System.Text;
using Corral.Logging;
using Corral.Os;

namespace Corral.Lifecycle;

/// <summary>
/// The master's pid file (-p), as Gunicorn's pidfile.py keeps it: a file that names a running corral
/// is refused ("Already running on PID N"), a stale one (its pid gone, or reused by a process that is
/// not corral) is replaced. It is written to a temp file in the same folder and renamed over the name,
/// so a reader never sees it half-written and a symlink planted there is replaced, not followed; it is
/// removed at exit only while it still names this process (after a USR2 upgrade the new master owns it).
/// A master started by USR2 writes PIDFILE.2 and renames it to PIDFILE once the old master is gone.
/// An instance is this master's pid file (none without -p: then it only tells when the old master is gone).
/// </summary>
public sealed class PidFile
{
    /// <summary>The old master's pid (CORRAL_UPGRADE_FROM) while this master, started by USR2, has not taken over.</summary>
    private string? _oldMaster;

    private PidFile(string? finalPath, string? oldMaster)
    {
        FinalPath = finalPath;
        _oldMaster = oldMaster;
        Path = finalPath is not null && oldMaster is not null ? finalPath + ".2" : finalPath;
    }

    /// <summary>This master's pid file: -p made absolute (null without it), PIDFILE.2 first for a master started by USR2.</summary>
    public static PidFile ForMaster(string? configured, IReadOnlyDictionary<string, string?> env) =>
        new(configured is null ? null : System.IO.Path.GetFullPath(configured), Upgrade.IsUpgraded(env) ? env[Upgrade.FromVariable] : null);

    /// <summary>PIDFILE, absolute; null without -p.</summary>
    public string? FinalPath { get; }

    /// <summary>The file this master writes and removes: PIDFILE, or PIDFILE.2 until it takes over from the old master.</summary>
    public string? Path { get; private set; }

    /// <summary>
    /// The control socket: --control-socket when given, else beside the pid file (PIDFILE.ctl, or
    /// PIDFILE.2.ctl while the old master still runs); null without either.
    /// </summary>
    public string? ControlSocketFor(Settings.CorralConfig config) =>
        config.ControlSocket is null ? null
            : config.IsExplicit(Settings.SettingsTable.ControlSocket) || Path is null ? config.ControlSocket : Path + ".ctl";

    /// <summary>
    /// Why this master must not start, or null: its pid file (or, for a fresh master, PIDFILE.2 of a USR2
    /// upgrade not yet finished) names a running corral. Starting anyway would take the running
    /// master's files over and remove them at exit.
    /// </summary>
    public string? AlreadyRunning()
    {
        foreach (var path in new[] { Path, _oldMaster is not null || FinalPath is null ? null : FinalPath + ".2" })
        {
            if (path is not null && RunningMaster(path) is { } pid)
            {
                return $"Already running on PID {pid} (pid file {path}): stop it first, or give this corral another --pid";
            }
        }
        return null;
    }

    /// <summary>Writes this process's pid (nothing without -p); false, said in the log, if the file cannot be created.</summary>
    public bool TryWrite(IMasterLog log)
    {
        if (Path is null)
        {
            return true;
        }
        try
        {
            Write(Path, Environment.ProcessId);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Error($"Can't create the pid file {Path}: {e.Message}");
            return false;
        }
    }

    /// <summary>
    /// A master started by USR2, once the old one has exited (this one was re-parented): renames
    /// PIDFILE.2 to PIDFILE and says so. True once, at that moment.
    /// </summary>
    public bool TryTakeOver(IMasterLog log)
    {
        if (_oldMaster is null || Native.ParentPid().ToString(CultureInfo.InvariantCulture) == _oldMaster)
        {
            return false;
        }
        if (FinalPath is not null && File.Exists(FinalPath + ".2"))
        {
            File.Move(FinalPath + ".2", FinalPath, overwrite: true);
        }
        log.Info($"The old master (pid:{_oldMaster}) is gone: this master takes over{(FinalPath is null ? "" : " " + FinalPath)}");
        _oldMaster = null;
        Path = FinalPath;
        return true;
    }

    /// <summary>At exit: removes the file if it still names this process.</summary>
    public void Remove() => Remove(Path, Environment.ProcessId);

    /// <summary>What a pid names, as far as the pid file is concerned.</summary>
    public enum Holder
    {
        /// <summary>No such process (or a zombie: nothing runs there).</summary>
        Gone,

        /// <summary>A live process that is not corral: the pid was reused after a master died.</summary>
        NotCorral,

        /// <summary>A live corral master.</summary>
        Corral,

        /// <summary>A live process whose command line cannot be read (another user, hidepid): taken as corral, as Gunicorn takes any live pid.</summary>
        Unknown,
    }

    /// <summary>
    /// The pid of the running corral that <paramref name="content"/> names, or null when the file may
    /// be replaced: no content, not a pid, this process's own pid (Gunicorn's rule), or a pid whose
    /// process is gone or is not corral.
    /// </summary>
    public static int? RunningPid(string? content, int self, Func<int, Holder> probe)
    {
        if (content is null || !int.TryParse(content.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0 || pid == self)
        {
            return null;
        }
        return probe(pid) is Holder.Corral or Holder.Unknown ? pid : null;
    }

    /// <summary>
    /// Whether a command line (/proc/PID/cmdline's NUL-separated words) runs corral: the apphost or
    /// .NET tool shim (argv[0] is corral), or the dotnet host with corral.dll as its first .dll.
    /// </summary>
    public static bool IsCorralCommandLine(IReadOnlyList<string> argv)
    {
        if (argv.Count == 0)
        {
            return false;
        }
        if (IsCorral(System.IO.Path.GetFileName(argv[0])))
        {
            return true;
        }
        return System.IO.Path.GetFileName(argv[0]) == "dotnet"
            && argv.Skip(1).FirstOrDefault(a => a.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)) is { } dll
            && IsCorral(System.IO.Path.GetFileName(dll));

        static bool IsCorral(string name) =>
            name.Equals("corral", StringComparison.OrdinalIgnoreCase) || name.Equals("corral.dll", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The pid of a running corral that the file at <paramref name="path"/> names, or null (see <see cref="RunningPid"/>).</summary>
    public static int? RunningMaster(string path) => RunningPid(Read(path), Environment.ProcessId, Probe);

    /// <summary>Looks at a live process: /proc/PID/cmdline tells corral from a process that reused the pid.</summary>
    public static Holder Probe(int pid)
    {
        if (!Native.IsAlive(pid))
        {
            return Holder.Gone;
        }
        byte[] cmdline;
        try
        {
            cmdline = File.ReadAllBytes($"/proc/{pid}/cmdline");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Holder.Gone;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Holder.Unknown;
        }
        // A zombie's (and a kernel thread's) command line is empty.
        var words = Encoding.UTF8.GetString(cmdline).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        return IsCorralCommandLine(words) ? Holder.Corral : Holder.NotCorral;
    }

    /// <summary>
    /// Writes <paramref name="pid"/> to a new temp file beside <paramref name="path"/> (O_EXCL: never an
    /// existing file or a symlink), mode 0644 as Gunicorn's, and renames it over <paramref name="path"/>.
    /// </summary>
    public static void Write(string path, int pid)
    {
        var full = System.IO.Path.GetFullPath(path);
        var temp = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(full)!, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write }))
            {
                stream.Write(Encoding.ASCII.GetBytes(pid.ToString(CultureInfo.InvariantCulture) + "\n"));
            }
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            File.Move(temp, full, overwrite: true); // rename(2): replaces a symlink at the name, never writes through it
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Removes the file if it still names <paramref name="pid"/> (after an upgrade the new master may have taken the name); never throws.</summary>
    public static void Remove(string? path, int pid)
    {
        if (path is not null && Read(path) is { } content
            && content.Trim() == pid.ToString(CultureInfo.InvariantCulture))
        {
            TryDelete(path);
        }
    }

    /// <summary>The file's first bytes as text; null if it is missing, unreadable, not a regular file or a symlink (which corral never writes).</summary>
    public static string? Read(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.LinkTarget is not null)
            {
                return null;
            }
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var buffer = new byte[32];
            var n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            return Encoding.ASCII.GetString(buffer, 0, n);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
