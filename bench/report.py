#!/usr/bin/env python3
"""Turns the raw measurements of bench/seed-tables.sh, bench/throughput.sh and bench/gc.sh into the
results files: a Markdown report, a JSON file with the numbers, and (for the seed tables) an SVG chart.
The renderers are in bench/reportlib/, one module each; the helpers the scripts call while they
measure are in bench/measure.py.

Standard library only. The shell scripts call it; it can be re-run on a kept bench/out/ folder:

    python3 bench/report.py seed --raw RAW.jsonl --meta META.tsv --servers SERVERS.tsv \
        --md seed-tables.md --svg seed-tables.svg --json seed-tables.json
    python3 bench/report.py throughput --raw RAW.jsonl --meta META.tsv --servers SERVERS.tsv \
        --md throughput.md --json throughput.json
    python3 bench/report.py gc --raw RAW.jsonl --meta META.tsv --servers /dev/null \
        --md gc.md --json gc.json
    python3 bench/report.py scaling --raw RAW.jsonl --meta META.tsv --servers /dev/null \
        --md scaling.md --json scaling.json --svg scaling.svg
"""

import argparse

from reportlib import gc_report, scaling, seed_tables, throughput

RENDERERS = {"seed": seed_tables.render, "throughput": throughput.render, "gc": gc_report.render, "scaling": scaling.render}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=list(RENDERERS))
    p.add_argument("--raw", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--servers", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--svg")
    args = p.parse_args()
    RENDERERS[args.what](args)


if __name__ == "__main__":
    main()
