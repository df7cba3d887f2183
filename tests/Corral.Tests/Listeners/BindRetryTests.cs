using System.Net;
using System.Net.Sockets;
using Corral.Listeners;

namespace Corral.Tests;

/// <summary>Gunicorn's retry of an address in use (5 attempts, 1 s apart), on real sockets with a fake sleep.</summary>
public sealed class BindRetryTests
{
    private static readonly Dictionary<string, string?> NoEnv = [];

    private static Socket Taken(out int port)
    {
        var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        return taken;
    }

    [Fact]
    public void An_address_freed_during_the_retries_is_bound()
    {
        var taken = Taken(out var port);
        var log = new List<string>();
        var sleeps = 0;
        var listeners = ListenerBinder.Bind([$"127.0.0.1:{port}"], 16, NoEnv, log.Add, d =>
        {
            Assert.Equal(TimeSpan.FromSeconds(1), d);
            if (++sleeps == 2)
            {
                taken.Dispose();
            }
        });
        try
        {
            Assert.Equal($"http://127.0.0.1:{port}", Assert.Single(listeners).Name);
            Assert.Equal(2, sleeps);
            Assert.Equal([$"Connection in use: 127.0.0.1:{port}", "Retrying in 1 second.", $"Connection in use: 127.0.0.1:{port}", "Retrying in 1 second."], log);
        }
        finally
        {
            ListenerBinder.Close(listeners);
        }
    }

    [Fact]
    public void An_address_in_use_five_times_fails_with_one_line()
    {
        using var taken = Taken(out var port);
        var log = new List<string>();
        var sleeps = 0;
        var e = Assert.Throws<BindException>(() => ListenerBinder.Bind([$"127.0.0.1:{port}"], 16, NoEnv, log.Add, _ => sleeps++));
        Assert.Equal(4, sleeps);
        Assert.Equal(5, log.Count(l => l == $"Connection in use: 127.0.0.1:{port}"));
        Assert.Equal(4, log.Count(l => l == "Retrying in 1 second."));
        Assert.StartsWith($"Can't connect to 127.0.0.1:{port}: connection in use after 5 attempts", e.Message);
    }

    [Fact]
    public void A_unix_socket_in_use_is_retried_too()
    {
        var path = Path.Combine(Path.GetTempPath(), $"corral-retry-{Guid.NewGuid():N}.sock");
        var taken = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        taken.Bind(new UnixDomainSocketEndPoint(path));
        taken.Listen();
        var log = new List<string>();
        var listeners = ListenerBinder.Bind(["unix:" + path], 16, NoEnv, log.Add, _ => taken.Dispose());
        ListenerBinder.Close(listeners);
        Assert.Equal([$"Connection in use: unix:{path}", "Retrying in 1 second."], log);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Other_bind_errors_are_not_retried()
    {
        var log = new List<string>();
        var sleeps = 0;
        var e = Assert.Throws<BindException>(() => ListenerBinder.Bind(["unix:/nonexistent-corral-dir/x.sock"], 16, NoEnv, log.Add, _ => sleeps++));
        Assert.Equal(0, sleeps);
        Assert.Empty(log);
        Assert.StartsWith("Can't connect to unix:/nonexistent-corral-dir/x.sock", e.Message);
    }
}
