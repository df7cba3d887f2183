using System.Net.Http.Headers;

namespace Corral.IntegrationTests.Infrastructure;

public static class Http
{
    private static readonly HttpClient s_client = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>GET on a new connection (like the seed's client), returning status and body.</summary>
    public static async Task<(int Status, string Body)> GetAsync(int port, string path, TimeSpan? timeout = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}{path}");
        request.Headers.ConnectionClose = true;
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        using var response = await s_client.SendAsync(request, cts.Token);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(cts.Token));
    }

    public static async Task<HttpResponseHeaders> HeadersAsync(int port, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}{path}");
        using var response = await s_client.SendAsync(request);
        return response.Headers;
    }

    /// <summary>
    /// Sends requests in a loop until cancelled and records every failure (exception or non-2xx):
    /// the "client that sees no error" of the acceptance tests.
    /// </summary>
    public sealed class Loop : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _task;
        private readonly List<string> _failures = [];
        private int _ok;

        public Loop(int port, string path = "/", int concurrency = 2)
        {
            _task = Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => RunAsync(port, path)));
        }

        public int Succeeded => Volatile.Read(ref _ok);

        public IReadOnlyList<string> Failures
        {
            get
            {
                lock (_failures)
                {
                    return [.. _failures];
                }
            }
        }

        private async Task RunAsync(int port, string path)
        {
            await Task.Yield();
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var (status, _) = await GetAsync(port, path);
                    if (status is >= 200 and < 300)
                    {
                        Interlocked.Increment(ref _ok);
                    }
                    else
                    {
                        lock (_failures)
                        {
                            _failures.Add($"HTTP {status}");
                        }
                    }
                }
                catch (Exception e) when (!_stop.IsCancellationRequested)
                {
                    lock (_failures)
                    {
                        _failures.Add(e.GetType().Name + ": " + e.Message);
                    }
                }
                catch (Exception)
                {
                    return;
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _task;
        }
    }
}
