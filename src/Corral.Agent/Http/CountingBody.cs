using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Http;

/// <summary>Counts the response body bytes the app writes, for the access log's b and B atoms.</summary>
internal sealed class CountingBody(IHttpResponseBodyFeature inner) : IHttpResponseBodyFeature
{
    private CountingStream? _stream;
    private CountingWriter? _writer;

    public long Count;

    /// <summary>Wraps the request's response body: what the app writes from now on is counted.</summary>
    public static CountingBody Install(HttpContext context)
    {
        var body = new CountingBody(context.Features.Get<IHttpResponseBodyFeature>()!);
        context.Features.Set<IHttpResponseBodyFeature>(body);
        return body;
    }

    public Stream Stream => _stream ??= new CountingStream(inner.Stream, this);
    public PipeWriter Writer => _writer ??= new CountingWriter(inner.Writer, this);
    public void DisableBuffering() => inner.DisableBuffering();
    public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);
    public Task CompleteAsync() => inner.CompleteAsync();

    public async Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        await inner.SendFileAsync(path, offset, count, cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref Count, count ?? new FileInfo(path).Length - offset);
    }

    private sealed class CountingWriter(PipeWriter inner, CountingBody body) : PipeWriter
    {
        public override void Advance(int bytes)
        {
            body.Count += bytes;
            inner.Advance(bytes);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);
        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;
        public override long UnflushedBytes => inner.UnflushedBytes;
    }

    private sealed class CountingStream(Stream inner, CountingBody body) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            body.Count += count;
            inner.Write(buffer, offset, count);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            body.Count += buffer.Length;
            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
