using System.Diagnostics;
using System.IO.Pipelines;
using Corral.Agent.Admission;
using Corral.Agent.Contract;
using Corral.Agent.Logging;
using Corral.Agent.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Corral.Agent.Http;

/// <summary>
/// The outermost middleware: counts requests (served, in flight), applies the worker class's
/// per-request rules, enforces --limit-request-field_size, writes the access log, and asks for a
/// recycle at --max-requests or once the app has thrown OutOfMemoryException.
/// </summary>
internal sealed class CorralMiddleware
{
    private readonly AgentOptions _options;
    private readonly AdmissionGate _gate;
    private readonly RequestStats _stats;
    private readonly AccessLogFormat? _accessFormat;
    private readonly AccessLogWriter? _accessWriter;
    private readonly bool _closeEveryConnection;
    private readonly ProxyTrust _proxyTrust;
    private int _recycleAsked;

    public CorralMiddleware(AgentOptions options, AdmissionGate gate, RequestStats stats)
    {
        _options = options;
        _gate = gate;
        _stats = stats;
        _closeEveryConnection = WorkerClassPolicy.For(options.WorkerClass).ClosesEveryConnection;
        _proxyTrust = ProxyTrust.Create(options.Proxy.ForwardedAllowIps, options.Proxy.SecureSchemeHeaders);
        if (!string.IsNullOrEmpty(options.Logs.AccessLogFile))
        {
            // --access-log-json: the JSON line's fields are fixed; --access-logformat is not used.
            _accessFormat = options.Logs.AccessLogJson ? null : AccessLogFormat.Parse(string.IsNullOrEmpty(options.Logs.AccessLogFormat) ? AccessLogFormat.GunicornDefault : options.Logs.AccessLogFormat);
            _accessWriter = new AccessLogWriter(options.Logs.AccessLogFile);
        }
    }

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var started = Stopwatch.GetTimestamp();
        var startTime = _accessWriter is null ? default : DateTimeOffset.Now;
        if (_gate.AcceptsHeld is { } warmupOver)
        {
            if (context.Features.Get<WarmupConnection>() is not null)
            {
                // Not the clients': no count, no log, no --max-requests. A request slot all the same (gthread).
                await _gate.EnterRequestAsync().ConfigureAwait(false);
                try
                {
                    await next(context).ConfigureAwait(false);
                }
                finally
                {
                    _gate.ExitRequest();
                }
                return;
            }
            if (_closeEveryConnection)
            {
                // sync: a connection its accept took as the warm-up began waits for the warm-up (one request at a time).
                await warmupOver.ConfigureAwait(false);
            }
        }
        _stats.Begin();
        CountingBody? counter = null;
        var status = 0;
        await _gate.EnterRequestAsync(context).ConfigureAwait(false);
        if (_gate.OneRequestAtATime)
        {
            _stats.Running();
        }
        try
        {
            if (_proxyTrust.Apply(context) is { } proxyError)
            {
                // Before anything reads the remote address or the scheme (the app, the access log).
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                context.Response.ContentType = "text/plain";
                await context.Response.WriteAsync(proxyError + "\n").ConfigureAwait(false);
                return;
            }
            if ((_closeEveryConnection || _gate.Draining) && !HttpProtocol.IsHttp2(context.Request.Protocol) && !HttpProtocol.IsHttp3(context.Request.Protocol))
            {
                // The sync class: one request per connection, as Gunicorn's sync worker. A draining
                // worker: this request is the connection's last, and the client is told so.
                context.Response.Headers.Connection = "close";
            }
            if (_accessWriter is not null)
            {
                counter = CountingBody.Install(context);
            }
            if (FieldTooLarge(context.Request.Headers) is { } field)
            {
                context.Response.StatusCode = StatusCodes.Status431RequestHeaderFieldsTooLarge;
                context.Response.ContentType = "text/plain";
                CloseAfterResponse(context); // as Kestrel's own 431: nothing more is read from this client
                await context.Response.WriteAsync($"Request header field '{field}' is larger than --limit-request-field_size ({_options.Limits.RequestFieldSize} bytes)\n").ConfigureAwait(false);
                return;
            }
            await next(context).ConfigureAwait(false);
        }
        catch
        {
            status = StatusCodes.Status500InternalServerError;
            // Gunicorn logs "Error handling request" with log.exception: counted the same way.
            AgentRuntime.Statsd?.Increment(StatsdMetrics.LogException);
            throw;
        }
        finally
        {
            _gate.ExitRequest();
            var elapsed = Stopwatch.GetElapsedTime(started);
            var finalStatus = status != 0 && !context.Response.HasStarted ? status : context.Response.StatusCode;
            AgentRuntime.Metrics.Record(context.Request.Method, finalStatus, elapsed);
            AgentRuntime.Statsd?.Request(finalStatus, elapsed);
            var served = _stats.End();
            if (_accessWriter is not null)
            {
                WriteAccessLog(context, startTime, elapsed, status, counter);
            }
            if (OutOfMemoryWatch.Seen && Interlocked.Exchange(ref _recycleAsked, 1) == 0)
            {
                // A worker whose heap is exhausted would answer 500 for ever: it is replaced, overlapped.
                AgentRuntime.Log.Warning("Worker ran out of memory (OutOfMemoryException): recycling it after current request.");
                AgentRuntime.ReportRecycle(Protocol.OutOfMemory);
            }
            else if (_options.MaxRequests > 0 && served >= _options.MaxRequests && Interlocked.Exchange(ref _recycleAsked, 1) == 0)
            {
                AgentRuntime.Log.Info("Autorestarting worker after current request.");
                AgentRuntime.ReportRecycle();
            }
        }
    }

    /// <summary>HTTP/1.x: `Connection: close`, and Kestrel closes the connection after this response.</summary>
    private static void CloseAfterResponse(HttpContext context)
    {
        if (!HttpProtocol.IsHttp2(context.Request.Protocol) && !HttpProtocol.IsHttp3(context.Request.Protocol))
        {
            context.Response.Headers.Connection = "close";
        }
    }

    private string? FieldTooLarge(IHeaderDictionary headers)
    {
        var limit = _options.Limits.RequestFieldSize;
        if (limit <= 0)
        {
            return null;
        }
        foreach (var (name, values) in headers)
        {
            foreach (var value in values)
            {
                if (name.Length + 2 + (value?.Length ?? 0) > limit)
                {
                    return name;
                }
            }
        }
        return null;
    }

    private void WriteAccessLog(HttpContext context, DateTimeOffset startTime, TimeSpan duration, int status, CountingBody? counter)
    {
        var request = context.Request;
        var response = context.Response;
        var requestFeature = context.Features.Get<IHttpRequestFeature>();
        var entry = new AccessLogEntry
        {
            Start = startTime,
            Duration = duration,
            RemoteAddress = context.Connection.RemoteIpAddress?.ToString(),
            Method = request.Method,
            RawTarget = requestFeature?.RawTarget ?? (request.Path + request.QueryString).ToString(),
            Path = request.PathBase.Add(request.Path).Value ?? "/", // decoded, as Gunicorn logs PATH_INFO
            QueryString = request.QueryString.ToString(),
            Protocol = request.Protocol,
            Status = status != 0 && !response.HasStarted ? status : response.StatusCode,
            BytesSent = counter?.Count ?? 0,
            RequestHeader = name => request.Headers.TryGetValue(name, out var v) ? v.ToString() : null,
            ResponseHeader = name => response.Headers.TryGetValue(name, out var v) ? v.ToString() : null,
            RequestHeaderValues = _accessFormat is null ? name => request.Headers.TryGetValue(name, out var v) ? v.ToArray() : null : null,
            Scheme = request.Scheme,
        };
        _accessWriter!.Write(_accessFormat is null ? JsonAccessLog.Format(entry) : _accessFormat.Format(entry));
    }

    /// <summary>Counts the response body bytes the app writes, for the b and B atoms.</summary>
    private sealed class CountingBody(IHttpResponseBodyFeature inner) : IHttpResponseBodyFeature
    {
        private CountingStream? _stream;
        private CountingWriter? _writer;

        public long Count;

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
