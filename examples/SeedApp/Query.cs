namespace SeedApp;

/// <summary>Reads an optional integer query parameter; a bad value becomes a 400 problem+json naming it.</summary>
public static class Query
{
    public static bool TryGetInt(HttpRequest request, string name, int defaultValue, int min, int max,
        out int value, out IResult problem)
    {
        problem = Results.Empty;
        var raw = request.Query[name];
        if (raw.Count == 0)
        {
            value = defaultValue;
            return true;
        }
        if (raw.Count == 1 && int.TryParse(raw[0], out value) && value >= min && value <= max)
        {
            return true;
        }
        value = 0;
        var message = $"Query parameter '{name}' must be an integer between {min} and {max}.";
        problem = TypedResults.ValidationProblem(
            new Dictionary<string, string[]> { [name] = [message] },
            detail: message,
            title: $"Invalid query parameter '{name}'");
        return false;
    }
}
