using System.Buffers.Binary;

namespace Corral.Agent.Http;

/// <summary>
/// Follows a websocket byte stream frame by frame (RFC 6455 headers read, payloads skipped): where
/// each frame ends, and whether a close frame has begun. It never buffers a payload.
/// </summary>
internal sealed class WebSocketFrames
{
    private const byte OpcodeMask = 0x0F, CloseOpcode = 0x8, MaskBit = 0x80;

    private readonly byte[] _header = new byte[14];
    private int _headerLength;
    private long _payloadLeft;

    /// <summary>Between two frames: nothing of a frame is half-way.</summary>
    public bool AtBoundary => _headerLength == 0 && _payloadLeft == 0;

    /// <summary>A close frame's header has gone by.</summary>
    public bool CloseSeen { get; private set; }

    public void Follow(ReadOnlySpan<byte> data)
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
            _header[_headerLength++] = data[0];
            data = data[1..];
            if (_headerLength < 2)
            {
                continue;
            }
            var length7 = _header[1] & 0x7F;
            var extended = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
            var needed = 2 + extended + ((_header[1] & MaskBit) != 0 ? 4 : 0);
            if (_headerLength < needed)
            {
                continue;
            }
            _payloadLeft = extended switch
            {
                2 => BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(2)),
                8 => (long)(BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(2)) & long.MaxValue), // the top bit is 0 (RFC 6455)
                _ => length7,
            };
            if ((_header[0] & OpcodeMask) == CloseOpcode)
            {
                CloseSeen = true;
            }
            _headerLength = 0;
        }
    }
}
