#!/usr/bin/env python3
"""Turns the raw measurements of bench/seed-tables.sh and bench/throughput.sh into the results
files: a Markdown report, a JSON file with the numbers, and (for the seed tables) an SVG chart.

Standard library only. The shell scripts call it; it can be re-run on a kept bench/out/ folder:

    python3 bench/report.py seed --raw RAW.jsonl --meta META.tsv --servers SERVERS.tsv \
        --md seed-tables.md --svg seed-tables.svg --json seed-tables.json
    python3 bench/report.py throughput --raw RAW.jsonl --meta META.tsv --servers SERVERS.tsv \
        --md throughput.md --json throughput.json
"""

import argparse
import json
import math
import statistics
from html import escape

PENDING = "pending"
BUSY_PCT = 25  # a run during which other processes used more of the machine than this is marked †


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def read_meta(path):
    return {row[0]: row[1] if len(row) > 1 else "" for row in read_tsv(path)}


def read_servers(path):
    servers = []
    for row in read_tsv(path):
        row += [""] * (5 - len(row))
        servers.append({"id": row[0], "label": row[1], "kind": row[2], "note": row[3], "cmd": row[4]})
    return servers


def read_raw(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def secs(ms, digits=1):
    return f"{ms / 1000:.{digits}f} s"


def machine_line(meta):
    return (
        f"{meta.get('nproc')} × {meta.get('cpu')} (nproc {meta.get('nproc')}), {meta.get('memory')}, "
        f"{meta.get('kernel')}; shared and noisy"
    )


def versions_line(meta):
    return (
        f".NET SDK {meta.get('dotnet')}; Gunicorn {meta.get('gunicorn')} on {meta.get('python')} "
        f"({meta.get('flask')})"
    )


def unavailable(server):
    kind = "corral" if server["kind"] == "corral" else server["label"]
    return f"{kind}: not available ({server['note']})"


# ---------------------------------------------------------------------------------------------
# seed tables


def seed(args):
    meta = read_meta(args.meta)
    servers = read_servers(args.servers)
    by_id = {s["id"]: s for s in servers}
    raw = read_raw(args.raw)
    io_ms = int(meta["io_ms"])
    io_n = int(meta["io_n"])
    cpu_ms = int(meta["cpu_ms"])
    cpu_max = int(meta["cpu_max"])

    def results(table):
        # (server, n) -> the run with the median total time over the rounds (None: every run failed)
        runs = {}
        for r in raw:
            if r["table"] == table:
                if r["result"]:
                    r["result"]["other_pct"] = r.get("other_pct")
                runs.setdefault(r["server"], {}).setdefault(r["n"], []).append(r["result"])
        out = {}
        for server, by_n in runs.items():
            for n, rs in by_n.items():
                ok = sorted((r for r in rs if r), key=lambda r: r["total_ms"])
                out.setdefault(server, {})[n] = ok[(len(ok) - 1) // 2] if ok else None
        return out

    io = results("io")
    io_async = results("io-async")
    cpu = results("cpu")

    io_ids = [s["id"] for s in servers]
    cpu_ids = ["corral-sync-w1", "corral-sync-w2", "kestrel", "gunicorn-sync-w1", "gunicorn-sync-w2"]
    cpu_ids = [i for i in cpu_ids if i in by_id]

    def concurrency(server_id):
        # requests one configuration runs at once; None = unbounded
        return {
            "corral-sync-w1": 1,
            "corral-sync-w2": 2,
            "corral-gthread-w1t2": 2,
            "gunicorn-sync-w1": 1,
            "gunicorn-sync-w2": 2,
            "gunicorn-gthread-w1t2": 2,
        }.get(server_id)

    def io_ideal(server_id):
        c = concurrency(server_id)
        return math.ceil(io_n / c) * io_ms if c else io_ms

    def cell(result):
        if result is None:
            return "failed"
        text = secs(result["total_ms"])
        if (result.get("other_pct") or 0) > BUSY_PCT:
            text += " †"
        if result["errors"]:
            text += f" ({result['errors']} errors)"
        return text

    def io_cell(table, server_id):
        s = by_id[server_id]
        if s["note"]:
            return "n/a"
        r = table.get(server_id, {}).get(io_n, "missing")
        return "—" if r == "missing" else cell(r)

    pending = [s for s in servers if s["note"]]
    lines = []
    add = lines.append
    add("# The seed's tables, side by side: Corral, bare Kestrel, Gunicorn")
    add("")
    if meta.get("mode") == "quick":
        add(f"> **Quick mode** (IO t = {secs(io_ms, 0)}, CPU t ≈ {secs(cpu_ms, 0)}, n ≤ {cpu_max}); "
            "the seed's own setting is the default run (t = 5 s).")
    if pending:
        notes = sorted({unavailable(s) for s in pending})
        add("> **Corral columns pending**: " + "; ".join(notes) + ". "
            "Re-run the script when Corral works; it fills them in.")
    add("")
    add(f"- command: `{meta.get('command')}` (took {meta.get('elapsed_s')} s)")
    add(f"- date: {meta.get('date')}, commit {meta.get('commit')}")
    add(f"- machine: {machine_line(meta)}; load average at the end {meta.get('load')}")
    add(f"- versions: {versions_line(meta)}")
    add("- client: `bench/SeedClient`, the seed's client in C#: n threads, a fresh connection each, "
        "released together; the time is from the release to the last response")
    add(f"- CPU work: a fixed LCG loop, calibrated to ≈ {secs(cpu_ms, 1)} per request alone: "
        f"{int(meta['dotnet_iters']):,} iterations in .NET, {int(meta['python_iters']):,} in CPython")
    rounds = int(meta.get("rounds", "1"))
    loads = [float(r["load"]) for r in raw if r.get("load")]
    add("- every server is up for the whole run; measurements alternate between them; "
        + ("one run each" if rounds == 1 else f"{rounds} rounds, the median run shown (with an even count the faster of the middle two: other load only slows a run)"))
    if loads:
        add(f"- 1-minute load average before each measurement: {min(loads):.2f} to {max(loads):.2f} "
            "(the client and the servers themselves count; anything above ~n for a CPU run means "
            "other work on the machine)")
    add("")
    add("![chart](seed-tables.svg)")
    add("")
    add(f"## IO-bound: {io_n} requests at once, each blocking {secs(io_ms, 0)} "
        "(`Thread.Sleep` / `time.sleep`)")
    add("")
    add("The seed: Gunicorn -w 1 took 50 s, -w 2 and -w 1 --threads 2 25 s, gevent 5 s.")
    add("")
    labels = [by_id[i]["label"] for i in io_ids]
    add("| | " + " | ".join(labels) + " |")
    add("|---|" + "---:|" * len(io_ids))
    add("| measured | " + " | ".join(io_cell(io, i) for i in io_ids) + " |")
    add("| ideal | " + " | ".join(secs(io_ideal(i), 0) for i in io_ids) + " |")
    spread = []
    for i in io_ids:
        r = io.get(i, {}).get(io_n)
        if by_id[i]["note"] or not r or not r.get("done_ms"):
            spread.append("n/a" if by_id[i]["note"] else "—")
        else:
            d = r["done_ms"]
            spread.append(f"{d[0] / 1000:.1f}–{d[-1] / 1000:.1f} s")
    add("| responses arrived (first–last) | " + " | ".join(spread) + " |")
    add("| same with `await Task.Delay` | "
        + " | ".join(io_cell(io_async, i) if i in ("kestrel", "corral-async-w1") else "—" for i in io_ids)
        + " |")
    others = []
    for i in io_ids:
        r = io.get(i, {}).get(io_n)
        others.append(f"{r['other_pct']}%" if r and r.get("other_pct") is not None and not by_id[i]["note"] else "")
    add("| other load on the machine | " + " | ".join(others) + " |")
    add("")
    add("n/a: not available (see the note above); —: not measured for that server. "
        f"†: during that run, processes other than the servers and the client used more than {BUSY_PCT}% "
        "of the machine's CPU (this machine is shared: builds and tests of other work run on it too).")
    add("")
    add(f"## CPU-bound: n requests at once, each ≈ {secs(cpu_ms, 1)} of CPU alone")
    add("")
    add("The seed (its own machine, t ≈ 2 s): Werkzeug and Gunicorn -w 1 grow by t per request; "
        "Gunicorn -w 2 takes 1.9, 1.7, 3.7, 3.6, 5.5, 5.5, 8.3, 8.3, 9.4, 9.6 s for n = 1..10.")
    add("")
    add("| n | ideal, 1 at a time | ideal, 2 at a time | "
        + " | ".join(by_id[i]["label"] for i in cpu_ids) + " |")
    add("|---:|---:|---:|" + "---:|" * len(cpu_ids))
    for n in range(1, cpu_max + 1):
        row = [str(n), secs(n * cpu_ms), secs(math.ceil(n / 2) * cpu_ms)]
        for i in cpu_ids:
            if by_id[i]["note"]:
                row.append("n/a")
            else:
                r = cpu.get(i, {}).get(n, "missing")
                row.append("—" if r == "missing" else cell(r))
        add("| " + " | ".join(row) + " |")
    add("")
    add(f"†: other processes used more than {BUSY_PCT}% of the machine's CPU during that run, "
        "so it is slower than the server alone would be.")
    add("")
    add(f"Ideal = ⌈n / w⌉ × t with t = {secs(cpu_ms, 1)}, for a server that runs w requests at once "
        "on this 2-core machine. Bare Kestrel runs every request at once on the thread pool, so "
        "the cores are shared: n requests take about n × t / 2 (2 cores), all finishing together.")
    add("")
    targets = seed_targets(by_id, io, io_n, io_ms, io_ideal, cpu, cpu_max)
    if targets:
        add("## Issue #3's targets")
        add("")
        add("IO: each Corral class within 5% of its ideal (10 t, 5 t, 5 t, t). CPU: Corral sync -w 2 "
            "within 10% of ⌈n / 2⌉ × t(1), t(1) being its own n = 1 time. Met or not as measured; a † "
            "row ran while other processes loaded the machine, so a miss there may be noise.")
        add("")
        add("| target | measured | expected | off by | met? |")
        add("|---|---:|---:|---:|---|")
        for t in targets:
            add(f"| {t['what']} | {t['measured_ms'] / 1000:.2f} s{' †' if t['busy'] else ''} | "
                f"{t['expected_ms'] / 1000:.2f} s | {t['off_pct']:+.1f}% | "
                f"{'met' if t['met'] else '**not met**'} |")
        add("")
    add("## Servers")
    add("")
    add("| server | command | status |")
    add("|---|---|---|")
    for s in servers:
        status = "not available (see the note at the top)" if s["note"] else "ran"
        cmd = f"`{s['cmd']}`" if s["cmd"] else "—"
        add(f"| {s['label']} | {cmd} | {status} |")
    add("")
    add("Raw per-request data (completion times, the server's own \"cost N ms\") is in "
        "`seed-tables.json`.")
    add("")
    with open(args.md, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))

    data = {
        "meta": meta,
        "servers": servers,
        "io": {i: io.get(i, {}).get(io_n) for i in io_ids},
        "io_async": {i: io_async.get(i, {}).get(io_n) for i in io_async},
        "cpu": {i: {str(n): r for n, r in sorted(cpu.get(i, {}).items())} for i in cpu_ids},
        "targets": targets,
    }
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")

    with open(args.svg, "w", encoding="utf-8") as f:
        f.write(seed_svg(meta, servers, by_id, io, io_n, io_ms, io_ideal, cpu, cpu_ids, cpu_ms, cpu_max))


def seed_targets(by_id, io, io_n, io_ms, io_ideal, cpu, cpu_max):
    """Issue #3's targets for Corral, each with the measured and expected time and met or not."""
    out = []

    def target(what, r, expected, tolerance):
        off = (r["total_ms"] - expected) / expected
        out.append({"what": what, "measured_ms": r["total_ms"], "expected_ms": expected,
                    "off_pct": round(100 * off, 1), "tolerance_pct": round(100 * tolerance),
                    "met": abs(off) <= tolerance and not r["errors"], "busy": busy(r)})

    for i in ("corral-sync-w1", "corral-sync-w2", "corral-gthread-w1t2", "corral-async-w1"):
        r = io.get(i, {}).get(io_n)
        if i in by_id and not by_id[i]["note"] and r:
            target(f"IO {by_id[i]['label']}", r, io_ideal(i), 0.05)
    runs = cpu.get("corral-sync-w2", {})
    t1 = runs.get(1)
    if t1 and not by_id.get("corral-sync-w2", {}).get("note"):
        for n in range(1, min(cpu_max, 6) + 1):
            r = runs.get(n)
            if r:
                target(f"CPU Corral sync -w 2, n = {n}", r, math.ceil(n / 2) * t1["total_ms"], 0.10)
    return out


COLORS = {
    "corral-sync-w1": "#08519c",
    "corral-sync-w2": "#3182bd",
    "corral-gthread-w1t2": "#6baed6",
    "corral-async-w1": "#9ecae1",
    "kestrel": "#756bb1",
    "gunicorn-sync-w1": "#a63603",
    "gunicorn-sync-w2": "#e6550d",
    "gunicorn-gthread-w1t2": "#fd8d3c",
    "gunicorn-gevent-w1": "#fdae6b",
}


def nice_axis(v, most=6):
    """(top, step): a round step with at most `most` steps from 0 to a top at or above v."""
    if v <= 0:
        return 1, 1
    exp = 10 ** math.floor(math.log10(v / most))
    for m in (1, 2, 2.5, 5, 10):
        step = m * exp
        if math.ceil(v * 1.02 / step) <= most:
            return math.ceil(v * 1.02 / step) * step, step
    return 10 * exp * most, 10 * exp


def busy(result):
    return (result.get("other_pct") or 0) > BUSY_PCT


def wrap(text, width):
    words, lines, line = text.split(" "), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    return lines + ([line] if line else [])


def seed_svg(meta, servers, by_id, io, io_n, io_ms, io_ideal, cpu, cpu_ids, cpu_ms, cpu_max):
    W, H = 1140, 600
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        '<text x="20" y="30" font-size="19" font-weight="bold">The seed\'s two tables: Corral, bare Kestrel '
        'and Gunicorn side by side</text>',
        '<text x="20" y="50" fill="#333">Total time for requests fired at once; lower is better. '
        'Black tick / grey dashes: the ideal. Hollow point or †: other processes loaded the shared '
        f'machine by more than {BUSY_PCT}% during that run.</text>',
        f'<text x="20" y="68" fill="#777" font-size="11">{escape(meta.get("date", ""))} · '
        f'{escape(meta.get("nproc", ""))} × {escape(meta.get("cpu", ""))} · .NET {escape(meta.get("dotnet", ""))} · '
        f'Gunicorn {escape(meta.get("gunicorn", ""))} · {escape(meta.get("command", ""))}</text>',
    ]

    # left: IO bars
    x0, y0, bw, row = 245, 112, 260, 38
    out.append(f'<text x="20" y="{y0 - 14}" font-size="14" font-weight="bold">'
               f'IO: {io_n} requests at once, each blocking {io_ms / 1000:g} s</text>')
    values = []
    for s in servers:
        r = io.get(s["id"], {}).get(io_n)
        values.append(r["total_ms"] if (r and not s["note"]) else 0)
        values.append(io_ideal(s["id"]))
    top, step = nice_axis(max(values) / 1000, 5)
    vmax, ticks = top * 1000, round(top / step)
    for k, s in enumerate(servers):
        y = y0 + k * row
        out.append(f'<text x="{x0 - 8}" y="{y + 18}" text-anchor="end">{escape(s["label"])}</text>')
        ideal = io_ideal(s["id"])
        r = io.get(s["id"], {}).get(io_n)
        if s["note"]:
            out.append(f'<rect x="{x0}" y="{y + 4}" width="{bw}" height="20" fill="#f3f3f3"/>')
            out.append(f'<text x="{x0 + 6}" y="{y + 18}" fill="#888" font-style="italic">not available yet</text>')
        elif r:
            w = bw * r["total_ms"] / vmax
            out.append(f'<rect x="{x0}" y="{y + 4}" width="{w:.1f}" height="20" fill="{COLORS.get(s["id"], "#888")}"/>')
            mark = " †" if busy(r) else ""
            out.append(f'<text x="{x0 + w + 6:.1f}" y="{y + 18}">{r["total_ms"] / 1000:.1f} s{mark}</text>')
        xi = x0 + bw * ideal / vmax
        out.append(f'<line x1="{xi:.1f}" x2="{xi:.1f}" y1="{y + 1}" y2="{y + 27}" stroke="black" stroke-width="2"/>')
    yb = y0 + len(servers) * row + 4
    out.append(f'<line x1="{x0}" x2="{x0 + bw}" y1="{yb}" y2="{yb}" stroke="#999"/>')
    for t in range(0, ticks + 1):
        v = vmax * t / ticks
        x = x0 + bw * t / ticks
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{yb}" y2="{yb + 4}" stroke="#999"/>')
        out.append(f'<text x="{x:.1f}" y="{yb + 17}" text-anchor="middle" fill="#555">{v / 1000:g} s</text>')

    # right: CPU lines
    px, py, pw, ph = 680, 112, 420, 320
    out.append(f'<text x="{px - 50}" y="{py - 14}" font-size="14" font-weight="bold">'
               f'CPU: n requests at once, each ≈ {cpu_ms / 1000:g} s of CPU alone</text>')
    ys = [n * cpu_ms for n in range(1, cpu_max + 1)]
    for i in cpu_ids:
        for r in cpu.get(i, {}).values():
            if r:
                ys.append(r["total_ms"])
    top, step = nice_axis(max(ys) / 1000, 6)
    ymax, ticks = top * 1000, round(top / step)

    def X(n):
        return px + pw * (n - 0.5) / cpu_max

    def Y(ms):
        return py + ph - ph * ms / ymax

    out.append(f'<rect x="{px}" y="{py}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for t in range(0, ticks + 1):
        v = ymax * t / ticks
        out.append(f'<line x1="{px}" x2="{px + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{px - 6}" y="{Y(v) + 4:.1f}" text-anchor="end" fill="#555">{v / 1000:g} s</text>')
    for n in range(1, cpu_max + 1):
        out.append(f'<text x="{X(n):.1f}" y="{py + ph + 16}" text-anchor="middle" fill="#555">{n}</text>')
    out.append(f'<text x="{px + pw / 2}" y="{py + ph + 34}" text-anchor="middle">n (requests at once)</text>')
    for w, label in ((1, "ideal, 1 at a time"), (2, "ideal, 2 at a time")):
        pts = " ".join(f"{X(n):.1f},{Y(math.ceil(n / w) * cpu_ms):.1f}" for n in range(1, cpu_max + 1))
        out.append(f'<polyline points="{pts}" fill="none" stroke="#aaa" stroke-width="2" stroke-dasharray="6 4"/>')
        lx = X(cpu_max - 0.6 if w == 1 else cpu_max)
        ly = Y(math.ceil((cpu_max - 0.6 if w == 1 else cpu_max) / w) * cpu_ms) + (-10 if w == 1 else 18)
        out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="end" fill="#888">{label}</text>')
    ly = py + ph + 60
    lx = px - 50
    for k, i in enumerate(cpu_ids):
        s = by_id[i]
        color = COLORS.get(i, "#888")
        dash = ' stroke-dasharray="3 3"' if i.endswith("w2") else ""
        pts = [(n, r) for n, r in sorted(cpu.get(i, {}).items()) if r]
        if pts and not s["note"]:
            points = " ".join(f"{X(n):.1f},{Y(r['total_ms']):.1f}" for n, r in pts)
            out.append(f'<polyline points="{points}" '
                       f'fill="none" stroke="{color}" stroke-width="2.5"{dash}/>')
            for n, r in pts:
                fill = "white" if busy(r) else color
                out.append(f'<circle cx="{X(n):.1f}" cy="{Y(r["total_ms"]):.1f}" r="4" fill="{fill}" '
                           f'stroke="{color}" stroke-width="2"/>')
        cx = lx + (k % 2) * 250
        cy = ly + (k // 2) * 20
        out.append(f'<line x1="{cx}" x2="{cx + 24}" y1="{cy - 4}" y2="{cy - 4}" stroke="{color}" stroke-width="3"{dash}/>')
        text = s["label"] + (" (not available yet)" if s["note"] else "")
        fill = "#999" if s["note"] else "black"
        out.append(f'<text x="{cx + 30}" y="{cy}" fill="{fill}">{escape(text)}</text>')

    pending = sorted({unavailable(s) for s in servers if s["note"]})
    if pending:
        for k, line in enumerate(wrap("; ".join(pending), 150)[:2]):
            out.append(f'<text x="20" y="{H - 34 + 16 * k}" fill="#a00">{escape(line)}</text>')
    out.append("</svg>\n")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# throughput


def throughput(args):
    meta = read_meta(args.meta)
    servers = read_servers(args.servers)
    by_id = {s["id"]: s for s in servers}
    raw = read_raw(args.raw)
    rounds = [r for r in raw if r.get("phase") == "round"]
    picks = [r for r in raw if r.get("phase") == "pick"]

    def med(xs):
        return statistics.median(xs) if xs else None

    summary = {}
    for s in servers:
        rs = [r for r in rounds if r["server"] == s["id"] and r.get("rps")]
        if not rs:
            continue
        summary[s["id"]] = {
            "rps": med([r["rps"] for r in rs]),
            "rps_all": [r["rps"] for r in rs],
            "p50": med([r["p50_ms"] for r in rs]),
            "p90": med([r["p90_ms"] for r in rs]),
            "p99": med([r["p99_ms"] for r in rs]),
            "errors": sum(r.get("errors", 0) for r in rs),
            "rounds": len(rs),
        }
    kestrel = summary.get("kestrel", {}).get("rps")

    lines = []
    add = lines.append
    add("# Throughput: `GET /` with keep-alive, wrk")
    add("")
    if meta.get("mode") == "quick":
        add("> **Quick mode**: short runs, fewer rounds and Gunicorn candidates; numbers are rough.")
    pending = [s for s in servers if s["note"]]
    if pending:
        add("> **Corral column pending**: " + "; ".join(sorted({unavailable(s) for s in pending})) + ". "
            "Re-run the script when Corral works.")
    add("")
    add(f"- command: `{meta.get('command')}` (took {meta.get('elapsed_s')} s)")
    add(f"- load: `{meta.get('wrk')}`, {meta.get('rounds')} rounds alternating the servers; "
        "the median round is shown")
    add(f"- date: {meta.get('date')}, commit {meta.get('commit')}")
    add(f"- machine: {machine_line(meta)}; wrk runs on the same 2 cores as the server; "
        f"load average at the end {meta.get('load')}")
    add(f"- versions: {versions_line(meta)}")
    add("")
    add("| server | req/s (median) | rounds | p50 | p90 | p99 | errors | req/s vs bare Kestrel | p99 vs bare Kestrel's |")
    add("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for s in servers:
        if s["note"]:
            add(f"| {s['label']} | n/a | | | | | | not available | |")
            continue
        m = summary.get(s["id"])
        if not m:
            add(f"| {s['label']} | failed | | | | | | | |")
            continue
        ratio = f"{m['rps'] / kestrel:.2f}×" if kestrel else "—"
        kestrel_p99 = summary.get("kestrel", {}).get("p99")
        p99_ratio = f"{m['p99'] / kestrel_p99:.2f}×" if kestrel_p99 else "—"
        add(f"| {s['label']} | {m['rps']:,.0f} | {', '.join(f'{x:,.0f}' for x in m['rps_all'])} | "
            f"{m['p50']:.2f} ms | {m['p90']:.2f} ms | {m['p99']:.2f} ms | {m['errors']} | {ratio} | {p99_ratio} |")
    add("")
    c, k = summary.get("corral-async-w2"), summary.get("kestrel")
    targets = []
    if c and k:
        per_round = []
        for rnd in sorted({r["round"] for r in rounds}):
            a = [r for r in rounds if r["round"] == rnd and r["server"] == "corral-async-w2" and r.get("rps")]
            b = [r for r in rounds if r["round"] == rnd and r["server"] == "kestrel" and r.get("rps")]
            if a and b:
                per_round.append((a[0]["rps"] / b[0]["rps"], a[0]["p99_ms"] / b[0]["p99_ms"]))
        rps_ratio, p99_ratio = c["rps"] / k["rps"], c["p99"] / k["p99"]
        targets = [
            {"what": "req/s ≥ 1.0× bare Kestrel's", "ratio": rps_ratio, "met": rps_ratio >= 1.0,
             "per_round": [x[0] for x in per_round]},
            {"what": "p99 ≤ 1.2× bare Kestrel's", "ratio": p99_ratio, "met": p99_ratio <= 1.2,
             "per_round": [x[1] for x in per_round]},
        ]
        add("## Issue #3's targets (Corral async -w 2 against bare Kestrel, same run)")
        add("")
        add("| target | median ratio | per round | met? |")
        add("|---|---:|---|---|")
        for t in targets:
            add(f"| {t['what']} | {t['ratio']:.2f}× | {', '.join(f'{x:.2f}' for x in t['per_round'])} | "
                f"{'met' if t['met'] else '**not met**'} |")
        add("")
        add("Both run on this 2-core machine together with wrk (2 threads), so the servers get well under "
            "2 cores; other processes on the shared machine add noise: compare the per-round ratios.")
        add("")
    if picks:
        best = meta.get("gunicorn_best", "")
        add(f"### Picking the best Gunicorn configuration (`{meta.get('pick_wrk')}` each)")
        add("")
        add("| configuration | req/s | p99 | errors |")
        add("|---|---:|---:|---:|")
        for r in picks:
            mark = " **← best**" if r["label"] == best else ""
            if r.get("rps"):
                add(f"| `gunicorn {r['label']}`{mark} | {r['rps']:,.0f} | {r['p99_ms']:.2f} ms | {r.get('errors', 0)} |")
            else:
                add(f"| `gunicorn {r['label']}` | failed | | |")
        add("")
    add("## Servers")
    add("")
    add("| server | command | status |")
    add("|---|---|---|")
    for s in servers:
        status = "not available (see the note at the top)" if s["note"] else "ran"
        add(f"| {s['label']} | {'`' + s['cmd'] + '`' if s['cmd'] else '—'} | {status} |")
    add("")
    with open(args.md, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "servers": servers, "summary": summary, "targets": targets, "rounds": rounds,
                   "pick": picks},
                  f, indent=1, ensure_ascii=False)
        f.write("\n")

# ---------------------------------------------------------------------------------------------
# gc: corral --gc server vs workstation


def gc_report(args):
    meta = read_meta(args.meta)
    raw = [r for r in read_raw(args.raw) if not r.get("error")]
    failed = [r for r in read_raw(args.raw) if r.get("error")]
    med = statistics.median
    configs = []
    for r in raw:
        key = (r["gc"], r["workers"])
        if key not in configs:
            configs.append(key)
    configs.sort(key=lambda k: (k[1], k[0]))
    summary = {}
    for gc, w in configs:
        rs = [r for r in raw if r["gc"] == gc and r["workers"] == w and r["wrk"].get("rps")]
        if not rs:
            continue
        per_worker = [k for r in rs for k in r["rss_kb"]]
        idle = [k for r in rs for k in r["rss_idle_kb"]]
        summary[f"{gc} -w {w}"] = {
            "gc": gc, "workers": w, "runs": len(rs),
            "rps": med([r["wrk"]["rps"] for r in rs]),
            "rps_all": [r["wrk"]["rps"] for r in rs],
            "p50_ms": med([r["wrk"]["p50_ms"] for r in rs]),
            "p99_ms": med([r["wrk"]["p99_ms"] for r in rs]),
            "errors": sum(r["wrk"].get("errors", 0) for r in rs),
            "worker_rss_mib": med(per_worker) / 1024,
            "worker_rss_idle_mib": med(idle) / 1024,
            "total_rss_mib": med([sum(r["rss_kb"]) for r in rs]) / 1024,
            "total_rss_all_mib": [sum(r["rss_kb"]) / 1024 for r in rs],
            "master_rss_mib": med([r["master_rss_kb"] for r in rs]) / 1024,
            "server_gc_threads": sorted({t for r in rs for t in r["server_gc_threads"]}),
            "env_gcServer": sorted({e for r in rs for e in r["env_gcServer"]}),
            "other_pct": [r.get("other_pct") for r in rs],
        }

    lines = []
    add = lines.append
    add("# GC mode of corral's workers: `--gc server` vs `--gc workstation`")
    add("")
    if meta.get("mode") == "quick":
        add("> **Quick mode**: short runs, 2 rounds; numbers are rough.")
        add("")
    add(f"- command: `{meta.get('command')}` (took {meta.get('elapsed_s')} s)")
    add(f"- server: `{meta.get('corral')}` (the async class, BenchApp's `/`: `Hello, World!`)")
    add(f"- load: `{meta.get('wrk')}` after a 3 s warm-up; {meta.get('rounds')} rounds, each running every "
        "configuration once, the order reversed every other round; medians shown")
    add("- memory: VmRSS from `/proc/PID/status` of each of the master's children (the workers), read "
        "right after the measured wrk run (and once before the warm-up: idle); total = the sum over the "
        "workers (the master is listed apart)")
    add(f"- date: {meta.get('date')}, commit {meta.get('commit')}")
    add(f"- machine: {machine_line(meta)}; wrk runs on the same 2 cores; load average at the end {meta.get('load')}")
    add(f"- .NET SDK {meta.get('dotnet')}")
    add("")
    add("| `--gc` | `-w` | req/s (median) | req/s per round | p50 | p99 | RSS per worker after load | idle | "
        "total RSS (workers) | master RSS | server GC threads per worker | other load % |")
    add("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, m in summary.items():
        add(f"| {m['gc']} | {m['workers']} | {m['rps']:,.0f} | {', '.join(f'{x:,.0f}' for x in m['rps_all'])} | "
            f"{m['p50_ms']:.2f} ms | {m['p99_ms']:.2f} ms | {m['worker_rss_mib']:.0f} MiB | "
            f"{m['worker_rss_idle_mib']:.0f} MiB | {m['total_rss_mib']:.0f} MiB | {m['master_rss_mib']:.0f} MiB | "
            f"{', '.join(map(str, m['server_gc_threads']))} | {', '.join(str(x) for x in m['other_pct'])} |")
    add("")
    add("Server GC threads: threads named `.NET Server GC` in the worker (one per heap; 0 means "
        "workstation GC). That is how the table checks that `--gc` reached the runtime "
        f"(`DOTNET_gcServer` in the workers' environment: {', '.join(sorted({e for m in summary.values() for e in m['env_gcServer']}))}).")
    if failed:
        add("")
        add("Failed runs: " + "; ".join(f"--gc {r['gc']} -w {r['workers']}: {r['error']}" for r in failed))
    add("")

    # conclusion, by a rule stated in the file
    add("## What the numbers say")
    add("")
    ws = [m for m in summary.values() if m["gc"] == "workstation"]
    sv = {m["workers"]: m for m in summary.values() if m["gc"] == "server"}
    ratios = {}
    for m in ws:
        s = sv.get(m["workers"])
        if not s:
            continue
        ratios[m["workers"]] = (s["rps"] / m["rps"], s["total_rss_mib"] / m["total_rss_mib"])
        add(f"- `-w {m['workers']}`: server GC gives {ratios[m['workers']][0]:.2f}× workstation's req/s, "
            f"{s['p99_ms'] / m['p99_ms']:.2f}× its p99, and uses {ratios[m['workers']][1]:.2f}× its memory "
            f"({s['total_rss_mib']:.0f} vs {m['total_rss_mib']:.0f} MiB for the workers).")
    add("")
    add("Rule: with the most workers measured, as corral normally runs, a "
        "difference counts only if it is at least 10% (req/s here varies far more than that between "
        "rounds on this shared machine). Server GC is the better default if it gives ≥ 1.10× the req/s "
        "without ≥ 1.10× the memory, or ≤ 0.90× the memory without losing more than 5% of req/s; "
        "workstation GC is if server GC gives ≤ 0.90× the req/s or ≥ 1.10× the memory; otherwise the "
        "numbers do not decide and the default stays as it is.")
    add("")
    if ratios:
        w = max(ratios)
        rps, mem = ratios[w]
        spread = [m for m in summary.values() if m["workers"] == w]
        noise = ", ".join(f"{m['gc']} {min(m['rps_all']):,.0f}–{max(m['rps_all']):,.0f}" for m in spread)
        if (rps >= 1.10 and mem < 1.10) or (mem <= 0.90 and rps >= 0.95):
            add(f"**Server GC is better here** (`-w {w}`: {rps:.2f}× the req/s, {mem:.2f}× the memory): the "
                "numbers support `--gc server` as the default.")
        elif rps <= 0.90 or mem >= 1.10:
            add(f"**Workstation GC is better here** (`-w {w}`: server GC gives {rps:.2f}× the req/s for "
                f"{mem:.2f}× the memory): the numbers support `--gc workstation` as the default.")
        else:
            add(f"**The numbers do not decide** (`-w {w}`: server GC gives {rps:.2f}× the req/s for {mem:.2f}× "
                f"the memory; req/s per round: {noise}). Neither GC is measurably better for this app on this "
                "machine, so nothing here argues for changing the default; they do not show that "
                "workstation is better either.")
    add("")
    add(f"Limits: this machine has {meta.get('nproc')} cores, and server GC sizes its heaps by the cores, "
        "so the memory cost that motivated a workstation default (N workers × cores heaps) cannot show "
        "here; since .NET 9 server GC also adapts its heap count to the app (DATAS) by default, which "
        "narrows the gap. `/` allocates little; an allocation-heavy app may differ more. `--gc app` "
        "keeps whatever the app's runtimeconfig says (server for a `dotnet new web` app).")
    add("")
    with open(args.md, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "summary": summary, "runs": read_raw(args.raw)}, f, indent=1, ensure_ascii=False)
        f.write("\n")


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(text):
    """The numbers of one `wrk --latency` output, latencies in ms."""
    import re

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
    import os

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


def main():
    import sys

    if sys.argv[1:2] == ["snap"]:
        import time

        busy, ours = cpu_snapshot(set(sys.argv[2:]))
        print(f"{time.monotonic():.3f} {busy:.2f} {ours:.2f}")
        return
    if sys.argv[1:2] == ["other-load"]:
        # other-load T0 BUSY0 OURS0 T1 BUSY1 OURS1 CLIENT_CPU_S NCPU: percent of the machine's CPU
        # used between the two snapshots by anything but our servers and the client
        t0, b0, o0, t1, b1, o1, client, ncpu = (float(x) for x in sys.argv[2:10])
        wall = t1 - t0
        other = (b1 - b0) - (o1 - o0) - client
        print(min(100, max(0, round(100 * other / (wall * ncpu)))) if wall > 0 else 0)
        return
    if sys.argv[1:2] == ["wrk"]:
        print(json.dumps(parse_wrk(sys.stdin.read())))
        return
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["seed", "throughput", "gc"])
    p.add_argument("--raw", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--servers", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--svg")
    args = p.parse_args()
    if args.what == "seed":
        seed(args)
    elif args.what == "gc":
        gc_report(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
