using System.Diagnostics;
using System.Globalization;
using Corral.Listeners;
using Corral.Logging;

namespace Corral.Lifecycle;

/// <summary>
/// USR2, Gunicorn's and Unicorn's binary upgrade: the master starts a new master (whatever corral is
/// on disk now, with the same arguments) that inherits the listeners instead of binding them
/// (CORRAL_FDS) and writes PIDFILE.2. Both serve from the same sockets, so no connection is refused.
/// WINCH to the old master drains its workers (HUP brings them back: a rollback); TERM ends it; the
/// new master then renames PIDFILE.2 to PIDFILE.
/// </summary>
public sealed class Upgrade(IReadOnlyList<Listener> listeners, string acceptLeader, IMasterLog log, string originalDirectory, Action<MasterEvent> post)
{
    public const string FdsVariable = "CORRAL_FDS";
    public const string FromVariable = "CORRAL_UPGRADE_FROM";

    /// <summary>
    /// --accept-policy pack's leader name, handed to the new master so that both generations share
    /// one leader: the new workers take connections first once the old ones drain (WINCH), not two
    /// runtimes at once before that.
    /// </summary>
    public const string AcceptLeaderVariable = "CORRAL_ACCEPT_LEADER";

    /// <summary>The leader name this master's workers use: the one it inherited through an upgrade, or a new one.</summary>
    public static string AcceptLeaderFor(IReadOnlyDictionary<string, string?> env) =>
        env.GetValueOrDefault(AcceptLeaderVariable) is { Length: > 0 } inherited
            ? inherited
            : $"corral-accept-{Environment.ProcessId}-{Guid.NewGuid():N}";

    private Process? _child;

    /// <summary>Set while a new master started by USR2 runs: the old one must not remove the unix socket files it shares.</summary>
    public bool HandedOver => _child is { HasExited: false };

    /// <summary>Loop thread only (the listeners are inheritable just for this spawn).</summary>
    public void Start()
    {
        if (HandedOver)
        {
            log.Warning($"USR2 ignored: a new master (pid:{_child!.Id}) already runs; TERM it or this one first");
            return;
        }
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which program runs corral");
        var args = Environment.GetCommandLineArgs();
        var psi = new ProcessStartInfo(self) { UseShellExecute = false, WorkingDirectory = originalDirectory };
        // Run as `dotnet corral.dll ARGS`: args[0] is corral.dll; as an apphost: args[0] is the program itself.
        foreach (var a in Path.GetFileNameWithoutExtension(self) == "dotnet" ? args : args.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment[FdsVariable] = string.Join(',', listeners.Select(l => l.Fd.ToString(CultureInfo.InvariantCulture)));
        psi.Environment[FromVariable] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        psi.Environment[AcceptLeaderVariable] = acceptLeader;
        psi.Environment.Remove("LISTEN_FDS");
        psi.Environment.Remove("LISTEN_PID");
        try
        {
            _child = new Process { StartInfo = psi, EnableRaisingEvents = true };
            ListenerBinder.WithInheritable(listeners, [], _child.Start);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            log.Error($"USR2: cannot start a new master: {e.Message}");
            _child = null;
            return;
        }
        var child = _child;
        child.Exited += (_, _) => post(new MasterEvent.UpgradeExited(child.Id, child.ExitCode));
        log.Info($"Upgrading: started a new master (pid:{child.Id}) on the same listeners; WINCH stops this master's workers, TERM ends it");
    }

    /// <summary>This master was started by USR2 (its <see cref="PidFile"/> is PIDFILE.2 until the old master is gone).</summary>
    public static bool IsUpgraded(IReadOnlyDictionary<string, string?> env) => !string.IsNullOrEmpty(env.GetValueOrDefault(FromVariable));
}
