namespace Corral.Agent.Admission;

/// <summary>Marks a warm-up request's connection: <see cref="CorralMiddleware"/> neither counts nor logs it.</summary>
internal sealed class WarmupConnection
{
    public static readonly WarmupConnection Instance = new();
}
