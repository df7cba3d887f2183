using Microsoft.Extensions.Logging;

namespace Corral.Agent.Boot;

/// <summary>
/// Until the worker is ready, the app's own error and critical log lines are the likeliest reason it
/// will not boot (a failed options validation, a database that does not answer): each is sent to the
/// master, which puts the last one in "Worker failed to boot".
/// </summary>
internal sealed class BootErrorLoggerProvider : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new BootErrorLogger();

    public void Dispose()
    {
    }

    private sealed class BootErrorLogger : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error && !AgentRuntime.IsReady;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }
            var text = formatter(state, exception);
            if (exception is not null && !text.Contains(exception.Message, StringComparison.Ordinal))
            {
                text += $" ({exception.GetType().Name}: {exception.Message})";
            }
            AgentRuntime.SendBootError(text);
        }
    }
}
