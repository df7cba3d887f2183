"""Which server id is what, as data. The ids are the ones bench/seed-tables.sh and
bench/throughput.sh give their servers (each script writes them, with the labels and commands, to
its run's servers.tsv); the labels in the reports come from there, everything else the reports need
to know about a server is here. An id missing from a table is shown without that knowledge (no
ideal, a grey colour, in no target).
"""

# bench/seed-tables.sh's servers, in the order of its tables.
#   concurrency  requests the configuration runs at once; None: every request at once (the IO
#                table's ideal is then t, else ⌈n / concurrency⌉ × t)
#   color        its bar and line in seed-tables.svg
#   cpu          a column of the CPU table (the columns keep this order)
#   io_async     also measured on /io-bound-async (the table's `await Task.Delay` row)
#   io_target    one of issue #3's IO targets: within SEED_IO_TOLERANCE of its ideal
#   dashed       its CPU line is dashed in the chart
SEED = {
    "corral-sync-w1": {"concurrency": 1, "color": "#08519c", "cpu": True, "io_target": True},
    "corral-sync-w2": {"concurrency": 2, "color": "#3182bd", "cpu": True, "io_target": True, "dashed": True},
    "corral-gthread-w1t2": {"concurrency": 2, "color": "#6baed6", "io_target": True},
    "corral-async-w1": {"concurrency": None, "color": "#9ecae1", "io_async": True, "io_target": True},
    "kestrel": {"concurrency": None, "color": "#756bb1", "cpu": True, "io_async": True},
    "gunicorn-sync-w1": {"concurrency": 1, "color": "#a63603", "cpu": True},
    "gunicorn-sync-w2": {"concurrency": 2, "color": "#e6550d", "cpu": True, "dashed": True},
    "gunicorn-gthread-w1t2": {"concurrency": 2, "color": "#fd8d3c"},
    "gunicorn-gevent-w1": {"concurrency": None, "color": "#fdae6b"},
}
SEED_OTHER_COLOR = "#888"  # an id not in SEED

# Issue #3's targets in the seed tables.
SEED_IO_TOLERANCE = 0.05
# CPU: this server within `tolerance` of ⌈n / its concurrency⌉ × t(1), t(1) being its own n = 1
# time, for n = 1..max_n; `what` names it in the targets table.
SEED_CPU_TARGET = {"server": "corral-sync-w2", "what": "Corral sync -w 2", "max_n": 6, "tolerance": 0.10}

# bench/throughput.sh: the ratios are to `reference`; issue #3's targets are for `subject`.
THROUGHPUT = {"reference": "kestrel", "subject": "corral-async-w2"}


def seed_info(server_id, key, default=None):
    """One fact about a seed-tables server (`default` when the id or the fact is not in SEED)."""
    return SEED.get(server_id, {}).get(key, default)


def seed_ids(key):
    """The seed-tables ids with a true `key`, in SEED's order."""
    return [i for i, facts in SEED.items() if facts.get(key)]


def seed_color(server_id):
    return seed_info(server_id, "color", SEED_OTHER_COLOR)
