namespace Corral.Metrics;

/// <summary>A --statsd-host that cannot be resolved (<see cref="StatsdAddress.Resolve"/>).</summary>
public sealed class StatsdException(string message) : Exception(message);
