#!/usr/bin/env python3
"""The helpers the bench scripts call while a benchmark runs (the reports are bench/report.py's):

    python3 bench/measure.py wrk <WRK_OUTPUT          one `wrk --latency` output as JSON (latencies in ms)
    python3 bench/measure.py snap PGID...             "MONOTONIC BUSY_S OURS_S": the machine's busy CPU
                                                      seconds and those of the given process groups
    python3 bench/measure.py other-load T0 BUSY0 OURS0 T1 BUSY1 OURS1 CLIENT_CPU_S NCPU
                                                      percent of the machine's CPU used between two snaps
                                                      by anything but those groups and the client

Standard library only, and only the few modules these need: `snap` runs just before and just after
each measurement, so it starts fast.
"""

import json
import os
import re
import sys
import time

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(text):
    """The numbers of one `wrk --latency` output, latencies in ms."""

    def latency(pct):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        return round(float(m.group(1)) * UNITS_MS[m.group(2)], 3) if m else None

    out = {"rps": None, "p50_ms": latency(50), "p75_ms": latency(75), "p90_ms": latency(90),
           "p99_ms": latency(99), "requests": None, "errors": 0}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors"] += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["errors"] += int(m.group(1))
    return out


def cpu_snapshot(pgids):
    """CPU seconds used so far by the whole machine (busy, steal included) and by the processes
    of the given process groups (with their reaped children)."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = sum(v) - v[3] - v[4]  # all but idle and iowait
    ours = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[2] in pgids:  # pgrp
            ours += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return busy / hz, ours / hz


def other_load(t0, b0, o0, t1, b1, o1, client, ncpu):
    """Percent of the machine's CPU used between two snapshots (time, busy, ours) by anything but
    our servers and the client (CLIENT seconds of CPU), 0 to 100."""
    wall = t1 - t0
    other = (b1 - b0) - (o1 - o0) - client
    return min(100, max(0, round(100 * other / (wall * ncpu)))) if wall > 0 else 0


def main():
    what = sys.argv[1:2]
    if what == ["snap"]:
        busy, ours = cpu_snapshot(set(sys.argv[2:]))
        print(f"{time.monotonic():.3f} {busy:.2f} {ours:.2f}")
    elif what == ["other-load"]:
        print(other_load(*(float(x) for x in sys.argv[2:10])))
    elif what == ["wrk"]:
        print(json.dumps(parse_wrk(sys.stdin.read())))
    else:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
