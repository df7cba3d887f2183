using System.Net.Sockets;
using System.Text;

namespace Corral.IntegrationTests.Infrastructure;

/// <summary>
/// A strict HTTP/1.1 keep-alive client, like wrk: requests one after another on one connection, a
/// new connection only after the server said "Connection: close". A connection closed or reset
/// without that is a failure (HttpClient would silently retry it). Only for GETs of small bodies
/// with Content-Length or chunked framing from Kestrel.
/// </summary>
public sealed class KeepAliveClient
{
    public int Succeeded;
    public int ClosedByServer;
    public readonly List<string> Failures = [];

    public async Task RunAsync(int port, string path, CancellationToken stop)
    {
        var request = Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        while (!stop.IsCancellationRequested)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync("127.0.0.1", port, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException e)
            {
                lock (Failures)
                {
                    Failures.Add("connect: " + e.SocketErrorCode);
                }
                continue;
            }
            using var stream = new NetworkStream(socket);
            var reader = new Reader(stream);
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await stream.WriteAsync(request, stop);
                    var (status, close) = await reader.ReadResponseAsync(stop);
                    if (status is < 200 or >= 300)
                    {
                        lock (Failures)
                        {
                            Failures.Add("HTTP " + status);
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref Succeeded);
                    }
                    if (close)
                    {
                        Interlocked.Increment(ref ClosedByServer);
                        break;
                    }
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (Exception e) when (e is IOException or SocketException or EndOfStreamException)
                {
                    lock (Failures)
                    {
                        Failures.Add(e.GetType().Name + ": " + e.Message);
                    }
                    break;
                }
            }
        }
    }

    private sealed class Reader(NetworkStream stream)
    {
        private readonly byte[] _buffer = new byte[16384];
        private int _start, _end;

        public async Task<(int Status, bool Close)> ReadResponseAsync(CancellationToken ct)
        {
            var statusLine = await ReadLineAsync(ct);
            var status = int.Parse(statusLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
            var close = false;
            long length = 0;
            var chunked = false;
            string line;
            while ((line = await ReadLineAsync(ct)).Length > 0)
            {
                var colon = line.IndexOf(':');
                var name = line[..colon].Trim();
                var value = line[(colon + 1)..].Trim();
                if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase) && value.Equals("close", StringComparison.OrdinalIgnoreCase))
                {
                    close = true;
                }
                else if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                {
                    length = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                }
                else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && value.Contains("chunked", StringComparison.OrdinalIgnoreCase))
                {
                    chunked = true;
                }
            }
            if (chunked)
            {
                while (true)
                {
                    var size = Convert.ToInt64((await ReadLineAsync(ct)).Split(';')[0], 16);
                    await SkipAsync(size + 2, ct);
                    if (size == 0)
                    {
                        break;
                    }
                }
            }
            else
            {
                await SkipAsync(length, ct);
            }
            return (status, close);
        }

        private async Task<string> ReadLineAsync(CancellationToken ct)
        {
            while (true)
            {
                var i = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (i >= 0)
                {
                    var line = Encoding.ASCII.GetString(_buffer, _start, i - _start).TrimEnd('\r');
                    _start = i + 1;
                    return line;
                }
                await FillAsync(ct);
            }
        }

        private async Task SkipAsync(long count, CancellationToken ct)
        {
            while (count > 0)
            {
                if (_start == _end)
                {
                    await FillAsync(ct);
                }
                var take = (int)Math.Min(count, _end - _start);
                _start += take;
                count -= take;
            }
        }

        private async Task FillAsync(CancellationToken ct)
        {
            if (_start > 0)
            {
                Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            var n = await stream.ReadAsync(_buffer.AsMemory(_end), ct);
            if (n == 0)
            {
                throw new EndOfStreamException("the server closed the connection without Connection: close");
            }
            _end += n;
        }
    }
}
