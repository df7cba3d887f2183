
namespace Corral.Logging;

/// <summary>The error log as the arbiter uses it (Gunicorn's levels).</summary>
public interface IMasterLog
{
    void Debug(string text);
    void Info(string text);
    void Warning(string text);
    void Error(string text);
    void Critical(string text);
    void Reopen();
}
