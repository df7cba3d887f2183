"""bench/seed-tables.sh's report: the seed's IO and CPU tables side by side, issue #3's targets for
Corral, the servers; as Markdown and JSON, with the chart from .svg."""

import math

from .common import BUSY_PCT, busy, machine_line, read_meta, read_raw, read_servers, secs, unavailable, \
    servers_section, versions_line, write_json, write_text
from .servers import SEED_CPU_TARGET, SEED_IO_TOLERANCE, seed_ids, seed_info
from .svg import seed_svg


def render(args):
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
    cpu_ids = [i for i in seed_ids("cpu") if i in by_id]

    def io_ideal(server_id):
        c = seed_info(server_id, "concurrency")
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
        + " | ".join(io_cell(io_async, i) if seed_info(i, "io_async") else "—" for i in io_ids)
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
    lines.extend(servers_section(servers))
    add("Raw per-request data (completion times, the server's own \"cost N ms\") is in "
        "`seed-tables.json`.")
    add("")
    write_text(args.md, lines)

    data = {
        "meta": meta,
        "servers": servers,
        "io": {i: io.get(i, {}).get(io_n) for i in io_ids},
        "io_async": {i: io_async.get(i, {}).get(io_n) for i in io_async},
        "cpu": {i: {str(n): r for n, r in sorted(cpu.get(i, {}).items())} for i in cpu_ids},
        "targets": targets,
    }
    write_json(args.json, data)

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

    for i in seed_ids("io_target"):
        r = io.get(i, {}).get(io_n)
        if i in by_id and not by_id[i]["note"] and r:
            target(f"IO {by_id[i]['label']}", r, io_ideal(i), SEED_IO_TOLERANCE)
    cpu_target = SEED_CPU_TARGET["server"]
    at_once = seed_info(cpu_target, "concurrency")
    runs = cpu.get(cpu_target, {})
    t1 = runs.get(1)
    if t1 and not by_id.get(cpu_target, {}).get("note"):
        for n in range(1, min(cpu_max, SEED_CPU_TARGET["max_n"]) + 1):
            r = runs.get(n)
            if r:
                target(f"CPU {SEED_CPU_TARGET['what']}, n = {n}", r, math.ceil(n / at_once) * t1["total_ms"],
                       SEED_CPU_TARGET["tolerance"])
    return out
