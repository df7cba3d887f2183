using System.Net.Sockets;
using System.Text;

namespace Corral.Control;

/// <summary>
/// The control socket: a unix socket, mode 0600, where `corral ctl` sends one command line and reads
/// one JSON reply. The accept loop runs off the master's loop; each command is posted into the loop
/// (<see cref="MasterEvent.Command"/>), which alone decides, and the reply is awaited here.
/// </summary>
public sealed class ControlServer : IDisposable
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly Action<MasterEvent> _post;
    private readonly CancellationTokenSource _stop = new();

    public string Path { get; private set; }

    private ControlServer(string path, Socket socket, Action<MasterEvent> post)
    {
        Path = path;
        _socket = socket;
        _post = post;
    }

    /// <summary>Whether a process listens on the unix socket at <paramref name="path"/> (a running master's control socket, not a stale file).</summary>
    public static bool Answers(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Binds PATH (a stale socket file there is replaced), sets mode 0600 before listening, and starts accepting.</summary>
    public static ControlServer Start(string path, Action<MasterEvent> post)
    {
        if (File.Exists(path) && (File.GetAttributes(path) & FileAttributes.Directory) == 0)
        {
            File.Delete(path); // a socket left by a master that was killed: nothing can connect to it
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnlinkedByUsEndPoint(path));
            // Before listen(2): nobody can connect until the mode is right.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            socket.Listen(16);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var server = new ControlServer(path, socket, post);
        _ = server.AcceptLoopAsync();
        return server;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested)
                {
                    return;
                }
                continue;
            }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using (client)
        using (var stream = new NetworkStream(client, ownsSocket: false))
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
        {
            timeout.CancelAfter(ReplyTimeout);
            try
            {
                using var reader = new StreamReader(stream, Encoding.UTF8, leaveOpen: true);
                var line = await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false) ?? "";
                if (line.Length > 1024)
                {
                    line = line[..1024];
                }
                var reply = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                _post(new MasterEvent.Command(line.Trim(), reply));
                var text = await reply.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
                await stream.WriteAsync(Encoding.UTF8.GetBytes(text + "\n"), timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
            {
            }
        }
    }

    /// <summary>
    /// Renames the socket file (after a USR2 upgrade: PIDFILE.2.ctl becomes PIDFILE.ctl); connections
    /// made to either name are the same socket. The file removed at exit is the new name.
    /// </summary>
    public void MoveTo(string path)
    {
        File.Move(Path, path, overwrite: true);
        Path = path;
    }

    /// <summary>
    /// Stops serving and removes the socket file, unless another master now answers there: after a USR2
    /// upgrade with an explicit --control-socket the new master has bound the same path (and after a
    /// second upgrade, PIDFILE.2.ctl is the newest master's), so the old one's exit must not take it away.
    /// </summary>
    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        try
        {
            if (!Answers(Path))
            {
                File.Delete(Path);
            }
        }
        catch (IOException)
        {
        }
        _stop.Dispose();
    }

    /// <summary>
    /// A unix socket address that .NET does not know as a file: a socket bound to a
    /// UnixDomainSocketEndPoint unlinks that path when disposed, whoever's socket is there by then.
    /// <see cref="Dispose"/> removes the file itself, and only when no other master answers on it.
    /// </summary>
    private sealed class UnlinkedByUsEndPoint(string path) : System.Net.EndPoint
    {
        public override AddressFamily AddressFamily => AddressFamily.Unix;

        public override System.Net.SocketAddress Serialize() => new UnixDomainSocketEndPoint(path).Serialize();

        public override System.Net.EndPoint Create(System.Net.SocketAddress socketAddress) => this;

        public override string ToString() => path;
    }
}
