"""The bench reports, one module per job (bench/report.py is the command line):

    common       reading a run's files (raw.jsonl, meta.tsv, servers.tsv) and shared formatting
    servers      which server id is what: the server tables the renderers read, as data
    seed_tables  bench/seed-tables.sh's report: the two tables and issue #3's targets (.md, .json)
    svg          the seed tables' chart (.svg)
    throughput   bench/throughput.sh's report (.md, .json)
    gc_report    bench/gc.sh's report (.md, .json)

The helpers the scripts call while a benchmark runs are apart, in bench/measure.py.
"""
