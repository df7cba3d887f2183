"""bench/scaling.sh's report: -w MIN:MAX against fixed counts under a load that rises and falls.

Raw input: one JSON line per run ({"id", "round", "cmd", plus what scaling_load.py wrote}). Per 5-s
window of each run: clients, workers (most seen), connections queued (most seen), p99 latency, requests,
failures and total PSS (mean); then per phase of the profile, and the ratios the brief asks for (p99 against
the largest fixed count, idle memory against the smallest).
"""

from .common import machine_line, read_meta, read_raw, write_json, write_text

WINDOW = 5.0
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def p99(values):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(0.99 * len(v)))]


def windows(run):
    out = []
    n = int(run["duration"] // WINDOW)
    for i in range(n):
        lo, hi = i * WINDOW, (i + 1) * WINDOW
        reqs = [r for r in run["requests"] if lo <= r[0] + r[1] < hi]
        smp = [s for s in run["samples"] if lo <= s["t"] < hi]
        lat = [r[1] for r in reqs if r[2]]
        out.append({
            "t": lo,
            # No sample in a window (the sampler did not run: a starved machine): unknown, not 0.
            "clients": max((s["clients"] for s in smp), default=None),
            "workers": max((s["workers"] for s in smp), default=None),
            "queued": max((s["queued"] for s in smp), default=None),
            "p99_ms": round(p99(lat) * 1000, 1) if lat else None,
            "requests": len(reqs),
            "failed": sum(1 for r in reqs if not r[2]),
            "pss_mib": round(sum(s["pss"] for s in smp) / len(smp) / 1048576, 1) if smp else None,
        })
    return out


def phases(run):
    """The profile's steps as [start, end) with their client count."""
    steps = sorted((float(t), int(n)) for t, n in (s.split(":") for s in run["profile"].split(",")))
    bounds = [t for t, _ in steps] + [run["duration"]]
    return [(bounds[i], bounds[i + 1], steps[i][1]) for i in range(len(steps))]


def phase_stats(run, lo, hi):
    # Latency of requests that started in the phase; memory and workers over its second half (settled).
    lat = [r[1] for r in run["requests"] if lo <= r[0] < hi and r[2]]
    mid = lo + (hi - lo) / 2
    smp = [s for s in run["samples"] if mid <= s["t"] < hi]
    return {
        "p99_ms": round(p99(lat) * 1000, 1) if lat else None,
        "requests": len(lat),
        "workers_end": smp[-1]["workers"] if smp else None,
        "pss_mib": round(sum(s["pss"] for s in smp) / len(smp) / 1048576, 1) if smp else None,
    }


def fmt(v, unit=""):
    return "—" if v is None else f"{v:g}{unit}"


def svg(runs, ids):
    w, h, pad = 900, 200, 50
    panels = [("workers", "workers", None), ("p99_ms", "p99 latency (ms, per 5 s)", None), ("pss_mib", "total PSS (MiB)", None)]
    dur = max(r["duration"] for r in runs)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h * len(panels) + 40}" font-family="sans-serif" font-size="12">']
    series = {i: windows(next(r for r in runs if r["id"] == i)) for i in ids}
    for k, (key, title, _) in enumerate(panels):
        top = k * h + 10
        vals = [x[key] for s in series.values() for x in s if x[key] is not None]
        most = max(vals) if vals else 1
        most = most * 1.1 or 1
        parts.append(f'<text x="{pad}" y="{top + 12}" font-weight="bold">{title}</text>')
        parts.append(f'<line x1="{pad}" y1="{top + h - 30}" x2="{w - 10}" y2="{top + h - 30}" stroke="#999"/>')
        parts.append(f'<text x="5" y="{top + 30}">{most:.0f}</text><text x="5" y="{top + h - 30}">0</text>')
        for j, i in enumerate(ids):
            pts = []
            for x in series[i]:
                if x[key] is None:
                    continue
                px = pad + (x["t"] + WINDOW / 2) / dur * (w - pad - 10)
                py = top + h - 30 - x[key] / most * (h - 60)
                pts.append(f"{px:.1f},{py:.1f}")
            parts.append(f'<polyline fill="none" stroke="{COLOURS[j % len(COLOURS)]}" stroke-width="2" points="{" ".join(pts)}"/>')
    for j, i in enumerate(ids):
        parts.append(f'<text x="{pad + j * 150}" y="{h * len(panels) + 30}" fill="{COLOURS[j % len(COLOURS)]}">-w {i}</text>')
    parts.append(f'<text x="{w - 200}" y="{h * len(panels) + 30}">x: 0 to {dur:.0f} s</text></svg>')
    return "\n".join(parts) + "\n"


def render(args):
    meta = read_meta(args.meta)
    runs = read_raw(args.raw)
    ids = list(dict.fromkeys(r["id"] for r in runs))
    data = {"meta": meta, "runs": []}
    lines = ["# -w MIN:MAX under a load that rises and falls", "",
             f"Command: `{meta.get('command')}`", "",
             f"Date: {meta.get('date')}. Machine: {machine_line(meta)}. Load average before: {meta.get('load')}, after: {meta.get('load_after')}.", "",
             f"Load: closed-loop clients, each `GET {runs[0]['path']}` on a new connection (the sync class: one blocking request per worker at a time), "
             f"their number following the profile `{runs[0]['profile']}` (from second T, N clients) for {runs[0]['duration']:.0f} s. "
             "Sampled once a second: worker processes, their PSS plus the master's, the listen queue (/proc/net/tcp).", ""]
    lines += ["## Per phase (latency of requests started in it; workers and PSS over its second half)", ""]
    header = "| phase | clients |" + "".join(f" -w {i} p99 | -w {i} workers | -w {i} PSS MiB |" for i in ids)
    lines += [header, "|---|---|" + "---|---|---|" * len(ids)]
    by_round = {}
    for r in runs:
        by_round.setdefault(r["round"], []).append(r)
    for rnd, rs in sorted(by_round.items()):
        for lo, hi, n in phases(rs[0]):
            row = f"| round {rnd}: {lo:.0f}-{hi:.0f} s | {n} |"
            for i in ids:
                run = next((x for x in rs if x["id"] == i), None)
                st = phase_stats(run, lo, hi) if run else {}
                row += f" {fmt(st.get('p99_ms'), ' ms')} | {fmt(st.get('workers_end'))} | {fmt(st.get('pss_mib'))} |"
            lines.append(row)
    lines.append("")
    lines += ["## Totals per run", "", "| round | server | requests | failed | p99 (whole run) | mean PSS MiB |", "|---|---|---|---|---|---|"]
    for r in runs:
        ok = [x[1] for x in r["requests"] if x[2]]
        failed = sum(1 for x in r["requests"] if not x[2])
        mean_pss = sum(s["pss"] for s in r["samples"]) / max(1, len(r["samples"])) / 1048576
        lines.append(f"| {r['round']} | -w {r['id']} | {len(r['requests'])} | {failed} | {fmt(round(p99(ok) * 1000, 1) if ok else None, ' ms')} | {mean_pss:.1f} |")
        data["runs"].append({"id": r["id"], "round": r["round"], "cmd": r.get("cmd"), "windows": windows(r)})
    lines.append("")
    lines += ["## Every 5-s window", ""]
    for r in runs:
        lines += [f"### round {r['round']}, -w {r['id']}", "", f"`{r.get('cmd')}`", "",
                  "| t (s) | clients | workers (max) | queued (max) | p99 | requests | failed | PSS MiB |", "|---|---|---|---|---|---|---|---|"]
        for x in windows(r):
            lines.append(f"| {x['t']:.0f} | {fmt(x['clients'])} | {fmt(x['workers'])} | {fmt(x['queued'])} | {fmt(x['p99_ms'], ' ms')} | {x['requests']} | {x['failed']} | {fmt(x['pss_mib'])} |")
        lines.append("")
    write_text(args.md, lines)
    write_json(args.json, data)
    if args.svg:
        with open(args.svg, "w", encoding="utf-8") as f:
            f.write(svg([r for r in runs if r["round"] == 1], ids))
