"""bench/throughput.sh's report: req/s and latency per server against the reference (bare Kestrel),
issue #3's targets, and how the best Gunicorn configuration was picked; as Markdown and JSON."""

import statistics

from .common import machine_line, read_meta, read_raw, read_servers, unavailable, servers_section, versions_line, write_json, \
    write_text
from .servers import THROUGHPUT


def render(args):
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
    ref_id, subject_id = THROUGHPUT["reference"], THROUGHPUT["subject"]
    kestrel = summary.get(ref_id, {}).get("rps")

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
        kestrel_p99 = summary.get(ref_id, {}).get("p99")
        p99_ratio = f"{m['p99'] / kestrel_p99:.2f}×" if kestrel_p99 else "—"
        add(f"| {s['label']} | {m['rps']:,.0f} | {', '.join(f'{x:,.0f}' for x in m['rps_all'])} | "
            f"{m['p50']:.2f} ms | {m['p90']:.2f} ms | {m['p99']:.2f} ms | {m['errors']} | {ratio} | {p99_ratio} |")
    add("")
    c, k = summary.get(subject_id), summary.get(ref_id)
    targets = []
    if c and k:
        per_round = []
        for rnd in sorted({r["round"] for r in rounds}):
            a = [r for r in rounds if r["round"] == rnd and r["server"] == subject_id and r.get("rps")]
            b = [r for r in rounds if r["round"] == rnd and r["server"] == ref_id and r.get("rps")]
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
    lines.extend(servers_section(servers))
    write_text(args.md, lines)
    write_json(args.json, {"meta": meta, "servers": servers, "summary": summary, "targets": targets, "rounds": rounds,
                           "pick": picks})
