namespace Corral.Agent.Http.Affinity;

/// <summary>
/// Follows the websocket frames (RFC 6455 section 5.2) passing through a relay, to tell when the
/// bytes sent so far end on a frame's edge: only there may the relay put a close frame of its own.
/// It reads the headers' lengths only, never a payload.
/// </summary>
internal sealed class FrameBoundary
{
    private readonly byte[] _head = new byte[14];
    private int _headLength;
    private int _headNeeded = 2;
    private long _payloadLeft;

    /// <summary>True when everything seen so far makes whole frames.</summary>
    public bool AtBoundary => _headLength == 0 && _payloadLeft == 0;

    /// <summary>A close frame has begun: the sender closes the websocket itself.</summary>
    public bool CloseSeen { get; private set; }

    /// <summary>Takes the next bytes of the stream.</summary>
    public void Advance(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (_payloadLeft > 0)
            {
                var skip = (int)Math.Min(_payloadLeft, data.Length);
                _payloadLeft -= skip;
                data = data[skip..];
                continue;
            }
            var take = Math.Min(_headNeeded - _headLength, data.Length);
            data[..take].CopyTo(_head.AsSpan(_headLength));
            _headLength += take;
            data = data[take..];
            if (_headLength < _headNeeded)
            {
                return;
            }
            if (_headNeeded == 2)
            {
                var length7 = _head[1] & 0x7F;
                var full = 2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + ((_head[1] & 0x80) != 0 ? 4 : 0);
                if (full > 2)
                {
                    _headNeeded = full;
                    continue;
                }
            }
            CloseSeen |= (_head[0] & 0x0F) == 0x8;
            _payloadLeft = PayloadLength();
            _headLength = 0;
            _headNeeded = 2;
        }
    }

    private long PayloadLength()
    {
        var length7 = _head[1] & 0x7F;
        return length7 switch
        {
            126 => (_head[2] << 8) | _head[3],
            127 => (long)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(_head.AsSpan(2, 8)) & long.MaxValue),
            _ => length7,
        };
    }

    /// <summary>An unmasked close frame (server to client) with <paramref name="status"/> and no reason.</summary>
    public static byte[] CloseFrame(int status) => [0x88, 0x02, (byte)(status >> 8), (byte)status];
}
