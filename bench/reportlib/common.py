"""Reading a run's files and the formatting the reports share."""

import json

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


def busy(result):
    """Whether other processes loaded the machine by more than BUSY_PCT during that run."""
    return (result.get("other_pct") or 0) > BUSY_PCT


def servers_section(servers):
    """The "## Servers" table that ends a report: each server's command, and whether it ran."""
    lines = ["## Servers", "", "| server | command | status |", "|---|---|---|"]
    for s in servers:
        status = "not available (see the note at the top)" if s["note"] else "ran"
        cmd = f"`{s['cmd']}`" if s["cmd"] else "—"
        lines.append(f"| {s['label']} | {cmd} | {status} |")
    lines.append("")
    return lines


def write_text(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
