
namespace Corral.Listeners;

/// <summary>A listener that cannot be had; <paramref name="inUseAt"/>: another socket listens on that address.</summary>
public sealed class BindException(string message, string? inUseAt = null) : Exception(message)
{
    /// <summary>Set when another socket listens there (it may be gone in a moment: an old corral's workers letting go).</summary>
    public string? InUseAt { get; } = inUseAt;
}
