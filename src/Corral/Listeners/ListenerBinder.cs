using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Corral.Lifecycle;
using Corral.Os;

namespace Corral.Listeners;

/// <summary>Binds corral's listeners once: from systemd (LISTEN_FDS), fd://N, or by address.</summary>
public static class ListenerBinder
{
    private const int SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_REUSEPORT = 15;

    [DllImport("libc", SetLastError = true)]
    private static extern int setsockopt(IntPtr fd, int level, int name, ref int value, int len);

    /// <summary>Gunicorn's retry of an address in use: 5 attempts, 1 s apart.</summary>
    public const int BindAttempts = 5;

    public static readonly TimeSpan BindRetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Binds every listener. An address in use is tried <see cref="BindAttempts"/> times, logging each
    /// failure on <paramref name="logError"/> as Gunicorn does, before it fails (no retry without a log).
    /// </summary>
    /// <param name="unixUmask">--umask: the mask a unix socket is bound under (Gunicorn's sock.py); null: the process's own.</param>
    /// <param name="reusePort">--reuse-port: SO_REUSEPORT on the TCP sockets bound here.</param>
    public static List<Listener> Bind(IReadOnlyList<string> binds, int backlog, IReadOnlyDictionary<string, string?> env,
        Action<string>? logError = null, Action<TimeSpan>? sleep = null, int? unixUmask = null, bool reusePort = false)
    {
        var result = new List<Listener>();
        try
        {
            // A USR2 upgrade: the old master handed its listeners over (CORRAL_FDS), keep them as they are.
            if (env.GetValueOrDefault(Upgrade.FdsVariable) is { Length: > 0 } handed)
            {
                foreach (var part in handed.Split(','))
                {
                    var fd = int.Parse(part, CultureInfo.InvariantCulture);
                    result.Add(Adopt(fd, $"fd://{fd}", ownUnixPath: true));
                }
                return result;
            }
            var systemd = FromSystemd(env);
            if (systemd.Count > 0)
            {
                result.AddRange(systemd);
                return result;
            }
            foreach (var text in binds)
            {
                if (!BindAddress.TryParse(text, out var address, out var error))
                {
                    throw new BindException($"--bind '{text}': {error}");
                }
                result.Add(Retrying(() => address!.Kind switch
                {
                    BindKind.Unix => BindUnix(address, backlog, unixUmask),
                    BindKind.Fd => Adopt(address.Fd, $"fd://{address.Fd}"),
                    _ => BindTcp(address, backlog, reusePort),
                }, logError, sleep ?? Thread.Sleep));
            }
            return result;
        }
        catch
        {
            Close(result);
            throw;
        }
    }

    /// <summary>
    /// Gunicorn's create_sockets: an address in use is logged ("Connection in use: ADDRESS", "Retrying in
    /// 1 second.") and tried again, up to <see cref="BindAttempts"/> times; then one line says it failed.
    /// The workers of a killed corral let go of its sockets within a moment (the agent's drain), and a
    /// corral restarted at once binds on a later attempt. Other errors do not go away by waiting: no retry.
    /// </summary>
    private static Listener Retrying(Func<Listener> bind, Action<string>? logError, Action<TimeSpan> sleep)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return bind();
            }
            catch (BindException e) when (e.InUseAt is { } where && logError is not null)
            {
                logError($"Connection in use: {where}");
                if (attempt == BindAttempts)
                {
                    throw new BindException($"Can't connect to {where}: connection in use after {BindAttempts} attempts, 1 s apart (another process listens there)");
                }
                logError("Retrying in 1 second.");
                sleep(BindRetryDelay);
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="spawn"/> with the listeners (and <paramref name="extraFds"/>) inheritable, and
    /// makes them close-on-exec again after it: .NET opens every fd CLOEXEC, so only a process started
    /// inside this window inherits them. Call it from the master's loop thread only.
    /// </summary>
    public static T WithInheritable<T>(IEnumerable<Listener> listeners, IReadOnlyList<int> extraFds, Func<T> spawn)
    {
        var fds = listeners.Select(l => l.Fd).Concat(extraFds).ToList();
        try
        {
            foreach (var fd in fds)
            {
                Native.SetInheritable(fd, true);
            }
            return spawn();
        }
        finally
        {
            foreach (var fd in fds)
            {
                Native.SetInheritable(fd, false);
            }
        }
    }

    /// <summary>Closes the sockets and removes the unix socket files corral made.</summary>
    public static void Close(IEnumerable<Listener> listeners, bool removeUnixFiles = true)
    {
        if (!removeUnixFiles)
        {
            // Handed over to a new master: leave the sockets to the kernel at exit. (.NET's Dispose of
            // a unix socket this process bound would also unlink its file from under the new master.)
            return;
        }
        foreach (var l in listeners)
        {
            l.Socket.Dispose();
            if (removeUnixFiles && l.UnixPathToRemove is not null)
            {
                try
                {
                    File.Delete(l.UnixPathToRemove);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    /// <summary>systemd socket activation: LISTEN_PID is us, LISTEN_FDS sockets from fd 3 on.</summary>
    private static List<Listener> FromSystemd(IReadOnlyDictionary<string, string?> env)
    {
        var list = new List<Listener>();
        if (!int.TryParse(env.GetValueOrDefault("LISTEN_FDS"), NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count <= 0)
        {
            return list;
        }
        if (env.GetValueOrDefault("LISTEN_PID") is { } pid && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return list;
        }
        for (var fd = 3; fd < 3 + count; fd++)
        {
            list.Add(Adopt(fd, $"fd://{fd}"));
        }
        return list;
    }

    private static Listener Adopt(int fd, string what, bool ownUnixPath = false)
    {
        if (!Native.IsValidFd(fd))
        {
            throw new BindException($"Can't use {what}: no such open file descriptor");
        }
        Socket socket;
        try
        {
            socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        }
        catch (SocketException e)
        {
            throw new BindException($"Can't use {what}: not a socket ({e.Message})");
        }
        var name = socket.LocalEndPoint switch
        {
            IPEndPoint ip => ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"http://[{ip.Address}]:{ip.Port}" : $"http://{ip.Address}:{ip.Port}",
            UnixDomainSocketEndPoint u => "unix:" + u,
            _ => what,
        };
        Native.SetInheritable(fd, false);
        // After an upgrade the new master owns the unix socket file (and removes it at exit).
        var unixPath = ownUnixPath && socket.LocalEndPoint is UnixDomainSocketEndPoint unix ? unix.ToString() : null;
        return new Listener(socket, name, unixPath);
    }

    private static Listener BindTcp(BindAddress address, int backlog, bool reusePort)
    {
        IPAddress ip;
        if (!IPAddress.TryParse(address.Host, out ip!))
        {
            try
            {
                ip = Dns.GetHostAddresses(address.Host).OrderBy(a => a.AddressFamily == AddressFamily.InterNetworkV6).First();
            }
            catch (Exception e) when (e is SocketException or InvalidOperationException)
            {
                throw new BindException($"Can't connect to {address.Host}:{address.Port}: the host name does not resolve to an address");
            }
        }
        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // SO_REUSEADDR only: .NET's ReuseAddress option would also set SO_REUSEPORT on Linux,
            // and then a second corral could bind the same port and steal connections.
            var one = 1;
            setsockopt(socket.Handle, SOL_SOCKET, SO_REUSEADDR, ref one, sizeof(int));
            // --reuse-port asks for exactly that (Gunicorn's reuse_port).
            if (reusePort && setsockopt(socket.Handle, SOL_SOCKET, SO_REUSEPORT, ref one, sizeof(int)) != 0)
            {
                throw new SocketException(Marshal.GetLastPInvokeError());
            }
            socket.Bind(new IPEndPoint(ip, address.Port));
            socket.Listen(backlog);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            var where = ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ip}]:{address.Port}" : $"{ip}:{address.Port}";
            throw new BindException(e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => $"Connection in use: {where} (another process listens there)",
                SocketError.AccessDenied => $"Can't connect to {where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
                SocketError.AddressNotAvailable => $"Can't connect to {where}: no such address on this host",
                _ => $"Can't connect to {where}: {e.Message}",
            }, e.SocketErrorCode == SocketError.AddressAlreadyInUse ? where : null);
        }
        var bound = (IPEndPoint)socket.LocalEndPoint!;
        var name = bound.AddressFamily == AddressFamily.InterNetworkV6 ? $"http://[{bound.Address}]:{bound.Port}" : $"http://{bound.Address}:{bound.Port}";
        return new Listener(socket, name, null);
    }

    private static Listener BindUnix(BindAddress address, int backlog, int? umask)
    {
        var path = Path.GetFullPath(address.Path!);
        if (Directory.Exists(path))
        {
            throw new BindException($"Can't connect to unix:{path}: the path is a directory");
        }
        if (File.Exists(path))
        {
            if (IsSocketInUse(path))
            {
                throw new BindException($"Connection in use: unix:{path} (another process listens there)", "unix:" + path);
            }
            if (new FileInfo(path).Length > 0)
            {
                throw new BindException($"Can't connect to unix:{path}: the path exists and is not a socket");
            }
            File.Delete(path); // a stale socket from an earlier run, as Gunicorn does
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        // The socket file's mode is 0777 less the umask at bind(2): Gunicorn binds under --umask (default 0,
        // so a proxy running as another user can connect), then puts the process's mask back.
        var before = umask is { } mask ? Native.SetUmask(mask) : (int?)null;
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(backlog);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new BindException(e.SocketErrorCode == SocketError.AccessDenied
                ? $"Can't connect to unix:{path}: permission denied"
                : $"Can't connect to unix:{path}: {e.Message}");
        }
        finally
        {
            if (before is { } restore)
            {
                Native.SetUmask(restore);
            }
        }
        return new Listener(socket, "unix:" + path, path);
    }

    private static bool IsSocketInUse(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
