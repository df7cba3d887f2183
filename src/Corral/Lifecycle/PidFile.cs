using System.Globalization;
using System.Text;
using Corral.Os;

namespace Corral.Lifecycle;

/// <summary>
/// The master's pid file (-p), as Gunicorn's pidfile.py keeps it: a file that names a running corral
/// is refused ("Already running on PID N"), a stale one (its pid gone, or reused by a process that is
/// not corral) is replaced. It is written to a temp file in the same folder and renamed over the name,
/// so a reader never sees it half-written and a symlink planted there is replaced, not followed; it is
/// removed at exit only while it still names this process (after a USR2 upgrade the new master owns it).
/// </summary>
public static class PidFile
{
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
        if (IsCorral(Path.GetFileName(argv[0])))
        {
            return true;
        }
        return Path.GetFileName(argv[0]) == "dotnet"
            && argv.Skip(1).FirstOrDefault(a => a.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)) is { } dll
            && IsCorral(Path.GetFileName(dll));

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
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
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
