using System.Buffers;
using Corral.Agent.Http;

namespace Corral.Fuzz;

/// <summary>
/// proxy: the first bytes of a connection, as <see cref="ProxyProtocol.TryParse"/> sees them with
/// --proxy-protocol (from the network, before any trust check). Promises: no exception; a parsed
/// header is no longer than the input (v1: 107 bytes, v2: 16 + its length) and has both endpoints or
/// neither; an invalid one says why in a printable line; the answer does not depend on how the bytes
/// are split across the pipe's segments, and no prefix of a header is already invalid or parsed.
/// </summary>
internal static class ProxyTarget
{
    public static readonly Target Target = new("proxy", "PROXY protocol v1/v2 header (ProxyProtocol.TryParse)", Run, Targets.Tokens(
        "PROXY ", "TCP4 ", "TCP6 ", "UNKNOWN", "\r\n", " 65535", "127.0.0.1", "::1", "ffff:",
        "\r\n\r\n\0\r\nQUIT\n", "\x21\x11", "\x21\x21", "\x20\x00", "\x21\x31", "\x00\x0C", "\x00\x24"));

    private static void Run(byte[] input)
    {
        var status = ProxyProtocol.TryParse(new ReadOnlySequence<byte>(input), out var header, out var error);
        Check(input, status, header, error);

        // A pipe hands the bytes over in segments: the answer must be the same whatever the split.
        var chunk = input.Length == 0 ? 1 : 1 + input[^1] % 17;
        var split = ProxyProtocol.TryParse(Segmented(input, chunk), out var splitHeader, out var splitError);
        Targets.Promise(split == status && splitHeader == header && splitError == error,
            $"split into {chunk}-byte segments: {split} {splitHeader} '{splitError}', whole: {status} {header} '{error}'");

        // The middleware parses again as more bytes arrive: no prefix of a header may be judged yet.
        if (status == ProxyHeaderStatus.Parsed)
        {
            foreach (var n in Prefixes(header.Length))
            {
                var early = ProxyProtocol.TryParse(new ReadOnlySequence<byte>(input, 0, n), out _, out _);
                Targets.Promise(early == ProxyHeaderStatus.NeedMore, $"the first {n} bytes of a {header.Length}-byte header: {early}, not NeedMore");
            }
        }
    }

    private static void Check(byte[] input, ProxyHeaderStatus status, ProxyHeader header, string? error)
    {
        switch (status)
        {
            case ProxyHeaderStatus.Parsed:
                Targets.Promise(header.Version is 1 or 2, $"version {header.Version}");
                Targets.Promise(header.Length > 0 && header.Length <= input.Length, $"a {header.Length}-byte header in {input.Length} bytes");
                Targets.Promise(header.Version == 2 || header.Length <= ProxyProtocol.V1MaxLength, $"a {header.Length}-byte v1 header");
                Targets.Promise(header.Source is null == header.Destination is null, "a source without a destination (or the reverse)");
                Targets.Promise(error is null, "an error with a parsed header");
                break;
            case ProxyHeaderStatus.Invalid:
                Targets.Promise(!string.IsNullOrEmpty(error) && !Targets.HasControl(error), $"invalid, and the reason is '{error}'");
                break;
            case ProxyHeaderStatus.NeedMore:
                // A v1 line is decided within 107 bytes, a v2 header within 16 + 65535.
                Targets.Promise(input.Length < 16 + ushort.MaxValue && (input.Length < ProxyProtocol.V1MaxLength || input[0] != (byte)'P'),
                    $"still NeedMore after {input.Length} bytes");
                break;
            case ProxyHeaderStatus.NotProxy:
                Targets.Promise(input.Length > 0, "NotProxy for no bytes at all");
                break;
        }
    }

    /// <summary>Prefix lengths worth trying: all of the first 128, then a few near the end.</summary>
    private static IEnumerable<int> Prefixes(int length) =>
        Enumerable.Range(0, Math.Min(length, 128)).Concat(Enumerable.Range(Math.Max(128, length - 4), Math.Min(4, Math.Max(0, length - 128))));

    private static ReadOnlySequence<byte> Segmented(byte[] input, int chunk)
    {
        if (input.Length <= chunk)
        {
            return new ReadOnlySequence<byte>(input);
        }
        var first = new Segment(input.AsMemory(0, chunk), 0);
        var last = first;
        for (var i = chunk; i < input.Length; i += chunk)
        {
            last = last.Append(input.AsMemory(i, Math.Min(chunk, input.Length - i)));
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>One segment of a multi-segment sequence.</summary>
    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
