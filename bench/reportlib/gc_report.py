"""bench/gc.sh's report: corral's workers with `--gc server` against `--gc workstation`, memory and
req/s, and a verdict by the rule it states; as Markdown and JSON."""

import statistics

from .common import machine_line, read_meta, read_raw, write_json, write_text


def render(args):
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
    write_text(args.md, lines)
    write_json(args.json, {"meta": meta, "summary": summary, "runs": read_raw(args.raw)})
