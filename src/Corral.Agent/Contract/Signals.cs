
namespace Corral.Agent.Contract;

/// <summary>
/// Signal numbers on Linux, named as Gunicorn's arbiter names them: the master speaks to its workers
/// with signals (docs/signals.md), so they are part of the contract, with the control lines.
/// </summary>
public static class Signals
{
    public const int HUP = 1, INT = 2, QUIT = 3, ABRT = 6, KILL = 9, USR1 = 10, USR2 = 12, TERM = 15, TTIN = 21, TTOU = 22, WINCH = 28;

    /// <summary>The signals the master handles.</summary>
    public static readonly int[] Handled = [HUP, INT, QUIT, TERM, TTIN, TTOU, USR1, USR2, WINCH];

    /// <summary>
    /// The signals a worker handles: INT and QUIT stop at once, TERM drains, USR1 reopens the logs, USR2
    /// promotes a spare (--spare-workers): it starts taking connections (ignored by a worker that serves).
    /// </summary>
    public static readonly int[] WorkerHandled = [INT, QUIT, TERM, USR1, USR2];

    public static string Name(int signal) => signal switch
    {
        HUP => "hup",
        INT => "int",
        QUIT => "quit",
        ABRT => "abrt",
        KILL => "kill",
        USR1 => "usr1",
        USR2 => "usr2",
        TERM => "term",
        TTIN => "ttin",
        TTOU => "ttou",
        WINCH => "winch",
        _ => "signal " + signal,
    };
}
