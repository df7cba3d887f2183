using System.Globalization;
using System.Text;

namespace Corral.Os;

/// <summary>
/// The master's private folder for its workers' forwarding sockets (PID.sock, see the agent's
/// Http/Affinity): mode 0700, so only corral's user can reach a worker there, made under
/// $XDG_RUNTIME_DIR, else $TMPDIR, else /tmp, and removed with what is in it when the master ends.
/// </summary>
public sealed class AffinityDirectory : IDisposable
{
    /// <summary>The longest socket path a worker may need: sun_path holds 108 bytes with the NUL.</summary>
    private const int MaxSocketPath = 107;

    private AffinityDirectory(string path) => Path = path;

    public string Path { get; }

    /// <summary>Makes the folder; null (said in the log by the caller) when none can be made.</summary>
    public static AffinityDirectory? Create(IReadOnlyDictionary<string, string?> env, out string? error)
    {
        error = null;
        var name = string.Create(CultureInfo.InvariantCulture, $"corral-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        foreach (var root in new[] { env.GetValueOrDefault("XDG_RUNTIME_DIR"), env.GetValueOrDefault("TMPDIR"), "/tmp" })
        {
            if (string.IsNullOrEmpty(root) || !Directory.Exists(root))
            {
                continue;
            }
            var path = System.IO.Path.Combine(root, name);
            // The longest pid (4194304) must still fit in a unix socket address.
            if (Encoding.UTF8.GetByteCount(SocketPath(path, 4194304)) > MaxSocketPath)
            {
                continue;
            }
            SweepAbandoned(root);
            try
            {
                Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                return new AffinityDirectory(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error = $"{path}: {e.Message}";
            }
        }
        error ??= "no runtime folder ($XDG_RUNTIME_DIR, $TMPDIR, /tmp) is short enough for a unix socket path";
        return null;
    }

    /// <summary>
    /// Removes the folders of masters that are gone without removing their own (killed by SIGKILL,
    /// or a crash): named as this one's, the pid no longer running, holding nothing but sockets and JIT profiles.
    /// </summary>
    private static void SweepAbandoned(string root)
    {
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.GetDirectories(root, "corral-*-*");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var dir in candidates)
        {
            var parts = System.IO.Path.GetFileName(dir).Split('-');
            if (parts.Length != 3 || parts[2].Length != 8 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                || Directory.Exists(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}")))
            {
                continue;
            }
            try
            {
                // Sockets, and the app's JIT profiles (--jit-profile) kept beside them.
                if (Directory.EnumerateFileSystemEntries(dir).All(e => e.EndsWith(".sock", StringComparison.Ordinal) || e.Contains(".jitprofile", StringComparison.Ordinal)))
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // another user's folder, or one going away meanwhile: not ours to clean
            }
        }
    }

    /// <summary>Where worker <paramref name="pid"/> listens (the agent's AffinityRouter computes the same).</summary>
    public static string SocketPath(string directory, int pid) =>
        System.IO.Path.Combine(directory, pid.ToString(CultureInfo.InvariantCulture) + ".sock");

    /// <summary>Removes the folder and the sockets left in it; never throws.</summary>
    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
