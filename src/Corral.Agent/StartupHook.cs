// The .NET runtime calls StartupHook.Initialize() in every assembly named in DOTNET_STARTUP_HOOKS,
// before the app's Main. The type must be named StartupHook and live in no namespace.
// Nothing here may touch an ASP.NET Core type: the app might not reference the framework at all,
// and then we must still be able to say so.
internal static class StartupHook
{
    public static void Initialize() => Corral.Agent.AgentRuntime.Start();
}
