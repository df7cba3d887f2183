using System.Buffers;
using System.Text.Json;

namespace Corral.Agent.Http.Affinity;

/// <summary>
/// Marks a SignalR negotiate response with the worker that issued it: the connection token
/// (negotiateVersion 1 and later), or the connection id that negotiateVersion 0 clients send back
/// in its place. Anything else (an error, a redirect to another server with "url" and
/// "accessToken", not JSON at all) is left as it is.
/// </summary>
internal static class NegotiateRewrite
{
    private const string ConnectionToken = "connectionToken";
    private const string ConnectionId = "connectionId";

    /// <summary>The marked response, or null when there is nothing to mark.</summary>
    public static byte[]? Rewrite(ReadOnlySpan<byte> json, int pid)
    {
        if (json.IsEmpty)
        {
            return null;
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException)
        {
            return null;
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || root.TryGetProperty("url", out _) || root.TryGetProperty("error", out _))
            {
                return null;
            }
            var target = IsString(root, ConnectionToken) ? ConnectionToken : IsString(root, ConnectionId) ? ConnectionId : null;
            if (target is null)
            {
                return null;
            }
            var output = new ArrayBufferWriter<byte>(json.Length + 16);
            using (var writer = new Utf8JsonWriter(output))
            {
                writer.WriteStartObject();
                foreach (var property in root.EnumerateObject())
                {
                    if (property.NameEquals(target))
                    {
                        writer.WriteString(property.Name, AffinityMarker.Format(pid, property.Value.GetString()!));
                    }
                    else
                    {
                        property.WriteTo(writer);
                    }
                }
                writer.WriteEndObject();
            }
            return output.WrittenSpan.ToArray();
        }
    }

    private static bool IsString(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String;
}
