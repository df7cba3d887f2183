using System.Runtime.CompilerServices;

namespace Corral.Agent;

/// <summary>
/// Native AOT apps run no startup hooks: such an app references Corral.Agent instead (see
/// docs/deployment.md, "Native AOT apps"), and this module initializer starts the agent before the
/// app's Main. Native AOT runs every module initializer at startup; under the JIT it runs when the
/// agent is first touched, where <see cref="AgentRuntime.Start"/> does nothing the second time.
/// </summary>
internal static class AotEntry
{
#pragma warning disable CA2255 // The attribute is meant for libraries' own start-up code: this is that.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialize() => AgentRuntime.Start();
}
