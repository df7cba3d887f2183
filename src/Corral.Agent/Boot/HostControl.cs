
namespace Corral.Agent.Boot;

/// <summary>Set by the takeover once the host exists: how the agent asks the app to stop gracefully.</summary>
internal static class HostControl
{
    public static Action? StopApplication { get; set; }

    /// <summary>Once the host runs: what TERM does (stop accepting, drain, stop).</summary>
    public static Action? Drain { get; set; }
}
