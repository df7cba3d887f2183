namespace Corral.Agent.Contract;

/// <summary>
/// How corral and its workers end, as Gunicorn names its own in arbiter.py (WORKER_BOOT_ERROR = 3).
/// The master's code is the answer systemd and scripts act on; a worker's tells the master why it went.
/// </summary>
public static class ExitCodes
{
    /// <summary>Stopped as asked.</summary>
    public const int Ok = 0;

    /// <summary>The master failed at run time: a port it cannot bind, a build that fails, a pid file it cannot write, a corral already running.</summary>
    public const int Error = 1;

    /// <summary>Bad usage or configuration, found before anything starts: a flag, a config file, a path, an APP that is not an app.</summary>
    public const int Usage = 2;

    /// <summary>
    /// Gunicorn's WORKER_BOOT_ERROR. The master: a worker failed to boot at start (a broken app does not
    /// fix itself). A worker: the agent could not take over the app's host.
    /// </summary>
    public const int WorkerBootError = 3;
}
