"""The seed's Flask app, run by the real Gunicorn for bench/seed-tables.sh and bench/throughput.sh.

    gunicorn -w 1 -b 127.0.0.1:PORT app:app                 # sync
    gunicorn -w 2 -b 127.0.0.1:PORT app:app
    gunicorn -w 1 --threads 2 -b 127.0.0.1:PORT app:app     # gthread
    gunicorn -w 1 -k gevent -b 127.0.0.1:PORT app:app       # gevent (time.sleep is patched)

Same endpoints and parameters as bench/BenchApp (the C# app):
  /cpu-bound?iters=N   a FIXED amount of CPU work: the same 32-bit LCG loop as BenchApp's
                       Work.Spin, N steps (default: BENCH_CPU_ITERS). Not the seed's factorial:
                       the harness calibrates N per runtime so one request takes ~t seconds on
                       both, and the tables compare scheduling, not arithmetic.
  /io-bound?ms=5000    time.sleep, like the seed
  /io-bound-async      the same as /io-bound here (a WSGI app has no await); kept so URLs match
  /                    a short text
"""

import os
import time

from flask import Flask, request

app = Flask(__name__)

DEFAULT_ITERS = int(os.environ.get("BENCH_CPU_ITERS", "11000000"))
DEFAULT_SLEEP_MS = 5000


def spin(iters):
    x = 1
    for _ in range(iters):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


@app.route("/")
def index():
    return "Hello, World!"


@app.route("/cpu-bound")
def cpu_bound():
    iters = request.args.get("iters", default=DEFAULT_ITERS, type=int)
    start = int(time.time() * 1000)
    result = spin(iters)
    end = int(time.time() * 1000)
    return (
        f"CPU Bound Task Completed cost {end - start} ms",
        200,
        {"X-Bench-Result": str(result), "X-Bench-Iters": str(iters)},
    )


@app.route("/io-bound")
@app.route("/io-bound-async")
def io_bound():
    ms = request.args.get("ms", default=DEFAULT_SLEEP_MS, type=int)
    start = int(time.time() * 1000)
    time.sleep(ms / 1000)
    end = int(time.time() * 1000)
    return f"IO Bound Task Completed cost {end - start} ms"
