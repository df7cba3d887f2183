"""The seed tables' chart: the IO table as bars, the CPU table as lines, with the ideals (SVG)."""

import math
from html import escape

from .common import BUSY_PCT, busy, unavailable
from .servers import seed_color, seed_info


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
            out.append(f'<rect x="{x0}" y="{y + 4}" width="{w:.1f}" height="20" fill="{seed_color(s["id"])}"/>')
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
        color = seed_color(i)
        dash = ' stroke-dasharray="3 3"' if seed_info(i, "dashed") else ""
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

