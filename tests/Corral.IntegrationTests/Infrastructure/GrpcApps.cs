namespace Corral.IntegrationTests.Infrastructure;

/// <summary>
/// A fresh `dotnet new grpc` service (its Greeter, and appsettings.json's
/// Kestrel:EndpointDefaults:Protocols = Http2, unchanged), built once per test run outside the
/// repository, as a user's app is. The tests call it with Grpc.Net.Client through the template's
/// greet.proto compiled as a client (tests/Corral.IntegrationTests/Protos/greet.proto).
/// </summary>
public static class GrpcApps
{
    private static readonly Lazy<Task<string>> s_service = new(() =>
    {
        var scratch = Scratch.NewDirectory("corral-grpc-");
        return TestApps.NewAndBuildAsync("grpc", Path.Combine(scratch, "GrpcService"), Path.Combine(scratch, "GrpcService-out"));
    });

    /// <summary>The built service's dll.</summary>
    public static Task<string> ServiceAsync() => s_service.Value;
}
