using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Corral.Agent.Logging;

/// <summary>
/// --access-log-json: one JSON object per line, with OpenTelemetry semantic-convention names
/// (docs/observability.md lists every field and the Gunicorn atom it stands for). Written with
/// <see cref="Utf8JsonWriter"/>: every value is a JSON string or number, so quotes, backslashes and
/// control characters in a header or path are escaped (\" \\ \n \u0001 ...) and can neither forge a
/// field nor end the line. Non-ASCII text stays UTF-8. One buffer and writer per thread, reused.
/// </summary>
public static class JsonAccessLog
{
    // Relaxed: non-ASCII text of the BMP and <>&'+ stay as they are (a log, not HTML). Escaped: " \, every
    // control character (C0, DEL, C1), U+2028/U+2029, unassigned code points, and anything beyond the
    // BMP (an emoji is a \uD83D\uDE00 pair: the same text once parsed).
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly JsonEncodedText Timestamp = JsonEncodedText.Encode("timestamp");
    private static readonly JsonEncodedText Method = JsonEncodedText.Encode("http.request.method");
    private static readonly JsonEncodedText UrlOriginal = JsonEncodedText.Encode("url.original");
    private static readonly JsonEncodedText UrlPath = JsonEncodedText.Encode("url.path");
    private static readonly JsonEncodedText UrlQuery = JsonEncodedText.Encode("url.query");
    private static readonly JsonEncodedText UrlScheme = JsonEncodedText.Encode("url.scheme");
    private static readonly JsonEncodedText ProtocolName = JsonEncodedText.Encode("network.protocol.name");
    private static readonly JsonEncodedText ProtocolVersion = JsonEncodedText.Encode("network.protocol.version");
    private static readonly JsonEncodedText StatusCode = JsonEncodedText.Encode("http.response.status_code");
    private static readonly JsonEncodedText BodySize = JsonEncodedText.Encode("http.response.body.size");
    private static readonly JsonEncodedText Duration = JsonEncodedText.Encode("http.server.request.duration");
    private static readonly JsonEncodedText ClientAddress = JsonEncodedText.Encode("client.address");
    private static readonly JsonEncodedText UserName = JsonEncodedText.Encode("user.name");
    private static readonly JsonEncodedText UserAgent = JsonEncodedText.Encode("user_agent.original");
    private static readonly JsonEncodedText Referer = JsonEncodedText.Encode("http.request.header.referer");
    private static readonly JsonEncodedText Pid = JsonEncodedText.Encode("process.pid");
    private static readonly JsonEncodedText Http = JsonEncodedText.Encode("http");

    /// <summary>A buffer that grew past this (a huge header) is not kept for the thread's next line.</summary>
    private const int KeepCapacity = 16 * 1024;

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary>The entry as one line of JSON (no line break in it).</summary>
    public static string Format(AccessLogEntry e)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var w = t_writer;
        if (w is null)
        {
            t_writer = w = new Utf8JsonWriter(buffer, Options);
        }
        else
        {
            w.Reset(buffer);
        }
        try
        {
            Write(w, e);
            w.Flush();
            return Encoding.UTF8.GetString(buffer.WrittenSpan);
        }
        finally
        {
            if (buffer.Capacity > KeepCapacity)
            {
                t_buffer = null;
                t_writer = null;
            }
        }
    }

    private static void Write(Utf8JsonWriter w, AccessLogEntry e)
    {
        w.WriteStartObject();

        // Gunicorn's t: when the response finished (the line is logged), here in UTC with milliseconds.
        Span<byte> time = stackalloc byte[32];
        (e.Start + e.Duration).UtcDateTime.TryFormat(time, out var n, "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fff'Z'", CultureInfo.InvariantCulture);
        w.WriteString(Timestamp, time[..n]);

        String(w, Method, e.Method);
        String(w, UrlOriginal, e.RawTarget);
        String(w, UrlPath, e.Path);
        if (e.QueryString.Length > 0)
        {
            String(w, UrlQuery, e.QueryString[0] == '?' ? e.QueryString.AsSpan(1) : e.QueryString);
        }
        String(w, UrlScheme, e.Scheme);
        WriteProtocol(w, e.Protocol);
        w.WriteNumber(StatusCode, e.Status);
        w.WriteNumber(BodySize, e.BytesSent);
        w.WriteNumber(Duration, e.Duration.TotalSeconds);
        if (e.RemoteAddress is { } remote)
        {
            String(w, ClientAddress, remote);
        }
        if (AccessLogFormat.BasicAuthUser(e.RequestHeader("Authorization")) is { } user)
        {
            String(w, UserName, user);
        }
        if (e.RequestHeader("User-Agent") is { } agent)
        {
            String(w, UserAgent, agent);
        }
        WriteHeaderValues(w, Referer, e, "Referer");
        w.WriteNumber(Pid, e.ProcessId);

        w.WriteEndObject();
    }

    /// <summary>network.protocol.name and .version from "HTTP/1.1", "HTTP/2", "HTTP/3" (OpenTelemetry: "http", "1.1").</summary>
    private static void WriteProtocol(Utf8JsonWriter w, string protocol)
    {
        if (protocol.StartsWith("HTTP/", StringComparison.OrdinalIgnoreCase))
        {
            w.WriteString(ProtocolName, Http);
            String(w, ProtocolVersion, protocol.AsSpan(5));
        }
        else if (protocol.Length > 0)
        {
            String(w, ProtocolName, protocol.ToLowerInvariant());
        }
    }

    /// <summary>An OpenTelemetry header attribute: every value of the header, in order (string[]); left out when absent.</summary>
    private static void WriteHeaderValues(Utf8JsonWriter w, JsonEncodedText name, AccessLogEntry e, string header)
    {
        var values = e.RequestHeaderValues?.Invoke(header) ?? (e.RequestHeader(header) is { } one ? [one] : null);
        if (values is null || values.Length == 0)
        {
            return;
        }
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            if (v is null)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteStringValue(HasSurrogate(v) ? Sanitize(v) : v);
            }
        }
        w.WriteEndArray();
    }

    private static void String(Utf8JsonWriter w, JsonEncodedText name, ReadOnlySpan<char> value)
    {
        w.WriteString(name, HasSurrogate(value) ? Sanitize(value) : value);
    }

    private static bool HasSurrogate(ReadOnlySpan<char> value) => value.IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    /// <summary>Replaces unpaired surrogates (which the writer refuses) with U+FFFD; pairs are kept.</summary>
    internal static string Sanitize(ReadOnlySpan<char> value)
    {
        var chars = value.ToArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(chars[i]))
            {
                chars[i] = '\uFFFD';
            }
        }
        return new string(chars);
    }
}
