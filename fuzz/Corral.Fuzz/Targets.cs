using System.Text;

namespace Corral.Fuzz;

/// <summary>
/// One fuzz target: <see cref="Run"/> feeds the input to a parser the way Corral does and checks what
/// it promises. An exception out of <see cref="Run"/> is a crash: a parser's own exception (an
/// IndexOutOfRangeException, a NullReferenceException, an InvalidOperationException of a JSON
/// accessor...) or a <see cref="BrokenPromise"/> where the answer is wrong. Each target swallows only
/// the exceptions its parser documents for bad input.
/// </summary>
internal sealed record Target(string Name, string Description, Action<byte[]> Run, Func<IReadOnlyList<byte[]>> Dictionary);

/// <summary>A parser answered without throwing, but broke what it promises (a header longer than the input, a two-line error...).</summary>
internal sealed class BrokenPromise(string message) : Exception(message);

/// <summary>The targets by name.</summary>
internal static class Targets
{
    public static readonly IReadOnlyList<Target> All = [ProxyTarget.Target, ControlTarget.Target, ConfigTarget.Target, AccessLogTarget.Target];

    public static Target? Find(string name) => All.FirstOrDefault(t => t.Name == name);

    /// <summary>The input's parts between NUL bytes (a target that needs several strings takes them this way).</summary>
    public static string[] Parts(byte[] input) => Encoding.UTF8.GetString(input).Split('\0');

    public static Func<IReadOnlyList<byte[]>> Tokens(params string[] tokens) => () => [.. tokens.Select(Encoding.UTF8.GetBytes)];

    public static void Promise(bool condition, string what)
    {
        if (!condition)
        {
            throw new BrokenPromise(what);
        }
    }

    /// <summary>True when the text has a character that ends or breaks a log line (C0, DEL, C1, U+2028, U+2029).</summary>
    public static bool HasControl(string text) => text.Any(c => char.IsControl(c) || c is '\u2028' or '\u2029');
}
