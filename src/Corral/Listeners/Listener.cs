using System.Net.Sockets;

namespace Corral.Listeners;

/// <summary>A listening socket the master owns for life and every worker inherits.</summary>
public sealed class Listener(Socket socket, string name, string? unixPathToRemove)
{
    public Socket Socket { get; } = socket;
    public int Fd { get; } = (int)socket.Handle;

    /// <summary>As the log says it: http://127.0.0.1:8000 or unix:/run/corral.sock.</summary>
    public string Name { get; } = name;

    /// <summary>A unix socket file corral created, removed at exit.</summary>
    public string? UnixPathToRemove { get; } = unixPathToRemove;
}
