using System.Text.Json;

namespace SeedApp.Tests;

public static class Http
{
    public const string RequestIdHeader = "X-Request-Id";

    public static string RequestId(this HttpResponseMessage response) =>
        response.Headers.TryGetValues(RequestIdHeader, out var values) ? values.Single() : throw new Xunit.Sdk.XunitException("no X-Request-Id header");

    /// <summary>Asserts an RFC 9457 problem+json response with this status and returns its JSON.</summary>
    public static async Task<JsonElement> ProblemAsync(this HttpResponseMessage response, int status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var json = JsonDocument.Parse(body).RootElement.Clone();
        Assert.Equal(status, json.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(json.GetProperty("title").GetString()));
        return json;
    }
}
