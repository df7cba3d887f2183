using Corral.Settings;


namespace Corral.Supervision;

/// <summary>The master's OS effects on workers: the only thing the arbiter asks of the OS.</summary>
public interface IProcessHost
{
    /// <summary>
    /// Starts a worker with this configuration; returns its pid. Throws <see cref="SpawnException"/>.
    /// A <paramref name="spare"/> (--spare-workers) takes no connection until it is sent SIGUSR2.
    /// </summary>
    int Spawn(CorralConfig config, bool spare);

    /// <summary>Sends a signal; false if the process is already gone.</summary>
    bool Signal(int pid, int signal);

    /// <summary>
    /// Captures the managed stacks of worker <paramref name="pid"/> and writes them to the error log,
    /// headed by <paramref name="why"/>; <paramref name="osThreadId"/> (an OS thread id), when known, is
    /// the thread to show first. Must not block the master's loop: it
    /// posts <see cref="MasterEvent.StacksCaptured"/> when done or given up (bounded in time).
    /// </summary>
    void CaptureStacks(int pid, string why, int? osThreadId);

    /// <summary>Worker <paramref name="pid"/> reported ready: it leaves its boot priority (--boot-nice).</summary>
    void WorkerReady(int pid);
}

public sealed class SpawnException(string message) : Exception(message);
