using System.Globalization;

namespace Corral.Settings;

/// <summary>
/// -w/--workers: a fixed count ("4", MIN = MAX) or a range ("1:4") within which the master adapts the
/// number of workers to the load (<see cref="Supervision.Autoscaler"/>).
/// </summary>
public readonly record struct WorkerRange(int Min, int Max)
{
    /// <summary>The most workers -w allows.</summary>
    public const int Limit = 1024;

    public const string Accepted = "a whole number from 1 to 1024, or MIN:MAX (e.g. 1:4) for a count that follows the load";

    /// <summary>The count adapts to the load: MIN is below MAX.</summary>
    public bool Adaptive => Min < Max;

    public override string ToString() => Adaptive
        ? string.Create(CultureInfo.InvariantCulture, $"{Min}:{Max}")
        : Min.ToString(CultureInfo.InvariantCulture);

    /// <summary>"N" or "MIN:MAX"; null with <paramref name="error"/> (what is wrong, without the accepted form) if it is neither.</summary>
    public static WorkerRange? Parse(string text, out string? error)
    {
        error = null;
        var parts = text.Trim().Split(':');
        if (parts.Length > 2)
        {
            error = "more than one ':'";
            return null;
        }
        var numbers = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out numbers[i]) || numbers[i] < 1 || numbers[i] > Limit)
            {
                // One number: the accepted form says it all ("" here); in a range, which part is wrong.
                error = parts.Length == 1 ? "" : $"'{parts[i]}' is not a whole number from 1 to {Limit}";
                return null;
            }
        }
        if (numbers.Length == 2 && numbers[0] > numbers[1])
        {
            error = $"MIN ({numbers[0]}) is above MAX ({numbers[1]})";
            return null;
        }
        return new WorkerRange(numbers[0], numbers[^1]);
    }

    /// <summary>The validator of -w: null if <paramref name="text"/> is a count or a range, else why not.</summary>
    public static string? Check(string text) => Parse(text, out var error) is null ? (string.IsNullOrEmpty(error) ? "expected " + Accepted : error) : null;
}
