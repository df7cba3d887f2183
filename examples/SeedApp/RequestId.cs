namespace SeedApp;

/// <summary>
/// Gives every request one id: the incoming <c>X-Request-Id</c> when it is sane, else the
/// framework's <see cref="HttpContext.TraceIdentifier"/>. The response carries it back, and every
/// log line written during the request carries it as the logging scope's <c>RequestId</c>
/// (the host already opens such a scope with the TraceIdentifier; an incoming id adds its own).
/// </summary>
public sealed class RequestIdMiddleware(RequestDelegate next, ILogger<RequestIdMiddleware> logger)
{
    public const string Header = "X-Request-Id";

    public async Task InvokeAsync(HttpContext context)
    {
        IDisposable? scope = null;
        var incoming = context.Request.Headers[Header].ToString();
        if (IsSane(incoming) && incoming != context.TraceIdentifier)
        {
            context.TraceIdentifier = incoming;
            scope = logger.BeginScope("RequestId:{RequestId}", incoming);
        }
        var id = context.TraceIdentifier;
        // OnStarting, not now: the exception handler clears the headers of a failed response.
        context.Response.OnStarting(() =>
        {
            context.Response.Headers[Header] = id;
            return Task.CompletedTask;
        });
        using (scope)
        {
            await next(context);
        }
    }

    private static bool IsSane(string id) =>
        id.Length is > 0 and <= 128 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':');
}
