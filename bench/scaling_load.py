#!/usr/bin/env python3
"""A load that rises and falls, for bench/scaling.sh (Python standard library only).

Closed-loop clients (each sends a request on a new connection, waits for the answer, sends the next)
whose number follows --profile, e.g. "0:1,20:4,40:12,70:4,90:0" (from second 0 one client, from second
20 four, ...). Once a second it samples the server: worker processes (children of the master), their
PSS plus the master's (/proc/PID/smaps_rollup), and the listen queue of --port (/proc/net/tcp rx_queue).
Writes one JSON document: every request (start, latency, ok) and every sample.
"""
import argparse
import http.client
import json
import os
import threading
import time


def children(pid):
    out = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                stat = f.read()
            ppid = int(stat.rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


def pss(pid):
    try:
        with open(f'/proc/{pid}/smaps_rollup') as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def queued(port):
    total = 0
    want = f'{port:04X}'
    for name in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[3] == '0A' and p[1].rsplit(':', 1)[1] == want:
                        total += int(p[4].split(':')[1], 16)
        except OSError:
            pass
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--master', type=int, required=True, help='pid of the corral master')
    ap.add_argument('--profile', required=True)
    ap.add_argument('--duration', type=float, required=True)
    ap.add_argument('--path', default='/io-bound?ms=50')
    ap.add_argument('--out', required=True)
    a = ap.parse_args()

    steps = sorted((float(t), int(n)) for t, n in (s.split(':') for s in a.profile.split(',')))
    most = max(n for _, n in steps)
    start = time.monotonic()
    stop = threading.Event()
    lock = threading.Lock()
    requests = []
    samples = []

    def level(t):
        n = 0
        for at, k in steps:
            if t >= at:
                n = k
        return n

    def client(i):
        while not stop.is_set():
            t = time.monotonic() - start
            if level(t) <= i:
                time.sleep(0.05)
                continue
            ok = False
            try:
                c = http.client.HTTPConnection('127.0.0.1', a.port, timeout=60)
                c.request('GET', a.path, headers={'Connection': 'close'})
                r = c.getresponse()
                r.read()
                ok = r.status == 200
                c.close()
            except Exception:  # a failed request is what we count
                ok = False
            end = time.monotonic() - start
            with lock:
                requests.append((round(t, 4), round(end - t, 5), ok))

    def sampler():
        while not stop.is_set():
            t = time.monotonic() - start
            workers = children(a.master)
            samples.append({'t': round(t, 3), 'clients': level(t), 'workers': len(workers),
                            'pss': pss(a.master) + sum(pss(w) for w in workers), 'queued': queued(a.port)})
            time.sleep(max(0.0, 1.0 - (time.monotonic() - start - t)))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(most)]
    threads.append(threading.Thread(target=sampler, daemon=True))
    for th in threads:
        th.start()
    time.sleep(a.duration)
    stop.set()
    for th in threads:
        th.join(timeout=70)
    with open(a.out, 'w') as f:
        json.dump({'profile': a.profile, 'path': a.path, 'duration': a.duration,
                   'requests': requests, 'samples': samples}, f)


if __name__ == '__main__':
    main()
