using System.ComponentModel;
using System.Net.Sockets;

namespace Corral.Agent;

/// <summary>
/// Runs the work Corral does on its own in a process (timers, its background threads, queued work
/// items) so that a failure never takes the process down: an exception there would end a worker
/// that serves well. A failure is logged, at most once a minute for each kind of work (a worker out
/// of file descriptors would otherwise log it every second), and the work is tried again next time.
/// <para>
/// Out of file descriptors (EMFILE), the runtime cannot open a file, a socket, nor load an assembly
/// it has not loaded yet: this class and the error log use nothing that is not loaded at start.
/// </para>
/// </summary>
internal static class Background
{
    public static readonly TimeSpan LogEvery = TimeSpan.FromMinutes(1);

    private const int EMFILE = 24, ENFILE = 23;

    private static readonly Dictionary<string, long> s_lastLogged = [];

    /// <summary>A timer callback that runs <paramref name="work"/> guarded.</summary>
    public static TimerCallback Timer(string what, Action work) => _ => Run(what, work);

    /// <summary>Runs <paramref name="work"/>; a failure is reported (<see cref="Report"/>), never thrown.</summary>
    public static void Run(string what, Action work, Action<string>? log = null)
    {
        try
        {
            work();
        }
        catch (Exception e)
        {
            Report(what, e, log);
        }
    }

    /// <summary>
    /// Logs that <paramref name="what"/> failed and that the process goes on, unless it was logged
    /// less than <see cref="LogEvery"/> ago. To <paramref name="log"/>, or the worker's error log.
    /// </summary>
    public static void Report(string what, Exception e, Action<string>? log = null)
    {
        try
        {
            if (!Due(what))
            {
                return;
            }
            var goesOn = log is null ? "the worker keeps serving" : "corral carries on";
            var message = e.Message.ReplaceLineEndings(" ").Trim(); // one log line
            var text = IsOutOfDescriptors(e)
                ? $"{what} failed: out of file descriptors ({message}); {goesOn}. Raise the limit (ulimit -n, systemd's LimitNOFILE=) or lower --worker-connections. Logged at most once a minute."
                : $"{what} failed: {e.GetType().Name}: {message}; {goesOn}. Logged at most once a minute.";
            (log ?? AgentRuntime.Log.Error)(text);
        }
        catch (Exception)
        {
            // Logging must not be what takes the process down either.
        }
    }

    /// <summary>A warning in the worker's error log, unless one with the same <paramref name="key"/> was logged less than <see cref="LogEvery"/> ago.</summary>
    public static void Warn(string key, string text)
    {
        try
        {
            if (Due(key))
            {
                AgentRuntime.Log.Warning(text);
            }
        }
        catch (Exception)
        {
        }
    }

    private static bool Due(string key)
    {
        var now = Environment.TickCount64;
        lock (s_lastLogged)
        {
            if (s_lastLogged.TryGetValue(key, out var last) && now - last < (long)LogEvery.TotalMilliseconds)
            {
                return false;
            }
            s_lastLogged[key] = now;
            return true;
        }
    }

    /// <summary>EMFILE (this process) or ENFILE (the whole system): no file descriptor left.</summary>
    public static bool IsOutOfDescriptors(Exception e) => e switch
    {
        SocketException s => s.SocketErrorCode == SocketError.TooManyOpenSockets || s.NativeErrorCode is EMFILE or ENFILE,
        Win32Exception w => w.NativeErrorCode is EMFILE or ENFILE,
        IOException io => io.HResult is EMFILE or ENFILE, // .NET's IOException on Unix carries errno
        _ => e.InnerException is { } inner && IsOutOfDescriptors(inner),
    };
}
