#!/usr/bin/env bash
# Why corral -k async -w 2 trails bare Kestrel on this 2-core machine (bench/results/throughput.md):
# is it how wrk's keep-alive connections split between the two workers? Each round runs wrk against
# bare Kestrel, then against corral -w 2, and counts, halfway through the corral run, the established
# connections each worker holds (ss). Writes bench/results/connection-split.md.
#
#   bench/connection-split.sh [--rounds R] [--duration S]     (defaults 12 rounds of 6 s: about 3 minutes)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=12
DURATION=6
CONNS=64
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--duration S]" >&2; exit 2 ;;
  esac
done
require_count --rounds "$ROUNDS"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] && ((DURATION >= 2)) || { echo "--duration: whole seconds, 2 or more, not '$DURATION'" >&2; exit 2; }
require_tools dotnet wrk ss curl python3 setsid timeout
ARGS_SHOWN="--rounds $ROUNDS --duration $DURATION"

OUT="$BENCH_DIR/out/connection-split"
rm -rf "$OUT" && mkdir -p "$OUT"
trap stop_all_servers EXIT
log "building corral and BenchApp (Release)"
build_dotnet "$ROOT_DIR/src/Corral"
build_dotnet "$BENCH_DIR/BenchApp"

KPORT=$(next_port); NEXT_PORT=$((KPORT + 1))
CPORT=$(next_port); NEXT_PORT=$((CPORT + 1))
start_server kestrel "$OUT" dotnet "$BENCH_APP_DLL" --urls "http://127.0.0.1:$KPORT"
start_server corral "$OUT" dotnet "$CORRAL_DLL_DEFAULT" -k async -w 2 -b "127.0.0.1:$CPORT" "$BENCH_APP_DLL"
for id in kestrel corral; do
  port=$([ "$id" = kestrel ] && echo "$KPORT" || echo "$CPORT")
  wait_ready "$id" "$port" 60 "$OUT" || { log "$id did not start: ${SERVER_NOTE[$id]}"; exit 1; }
  timeout 30 wrk -t2 -c"$CONNS" -d3s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true # warm-up (JIT)
done

# wrk_run PORT FILE: one wrk run; prints "REQ_PER_S P99_MS".
wrk_run() {
  timeout $((DURATION + 30)) wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$1/" >"$2" 2>&1 || true
  python3 "$BENCH_DIR/measure.py" wrk <"$2" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["rps"], r["p99_ms"])'
}

printf 'round\tkestrel_rps\tkestrel_p99\tcorral_rps\tcorral_p99\tsplit\n' >"$OUT/rounds.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
  read -r krps kp99 < <(wrk_run "$KPORT" "$OUT/kestrel-$r.txt")
  wrk_run "$CPORT" "$OUT/corral-$r.txt" >"$OUT/corral-$r.result" &
  wrk_pid=$!
  sleep $((DURATION / 2))
  # Established connections per worker pid, largest first: "40/24", or "64/0" when one holds them all.
  split=$(ss -tnpH state established "( sport = :$CPORT )" | grep -o 'pid=[0-9]*' | sort | uniq -c | awk '{print $1}' | sort -rn | paste -sd/)
  [[ $split == */* ]] || split="$split/0"
  wait "$wrk_pid"
  read -r crps cp99 <"$OUT/corral-$r.result"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$krps" "$kp99" "$crps" "$cp99" "$split" >>"$OUT/rounds.tsv"
  log "round $r: Kestrel $krps req/s; corral -w 2 $crps req/s with connections split $split"
done
stop_all_servers

machine_facts >"$OUT/meta.tsv"
python3 - "$OUT/rounds.tsv" "$OUT/meta.tsv" "$ARGS_SHOWN" "$CONNS" "$DURATION" >"$BENCH_DIR/results/connection-split.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
meta = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[2]) if "\t" in l)
args, conns, dur = sys.argv[3], sys.argv[4], sys.argv[5]
k_med = statistics.median(float(r["kestrel_rps"]) for r in rows)
def share(r):
    a, b = (int(x) for x in r["split"].split("/")[:2])
    return a / max(1, a + b)
print("# Connection split between corral's two async workers, and throughput")
print()
print(f"- command: `bench/connection-split.sh {args}`")
print(f"- load: `wrk -t2 -c{conns} -d{dur}s --latency` on `/` (BenchApp), each round bare Kestrel then corral `-k async -w 2`; "
      "the split is counted with `ss` halfway through the corral run")
print(f"- machine: {meta.get('nproc')} cores, {meta.get('cpu')}, {meta.get('kernel')}, .NET {meta.get('dotnet')}; "
      f"date {meta.get('date')}; commit {meta.get('commit')}; wrk on the same cores")
print()
print("| round | Kestrel req/s | Kestrel p99 | corral -w 2 req/s | ratio to the median Kestrel | corral p99 | connections per worker |")
print("|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    print(f"| {r['round']} | {float(r['kestrel_rps']):,.0f} | {float(r['kestrel_p99']):.1f} ms | {float(r['corral_rps']):,.0f} | "
          f"{float(r['corral_rps']) / k_med:.2f} | {float(r['corral_p99']):.1f} ms | {r['split']} |")
print()
groups = [("one worker holds ≥ 90% of the connections", [r for r in rows if share(r) >= 0.9]),
          ("both workers hold connections (the larger < 90%)", [r for r in rows if share(r) < 0.9])]
print("| rounds where | rounds | median corral req/s | ratio to the median Kestrel | median corral p99 |")
print("|---|---:|---:|---:|---:|")
for name, g in groups:
    if g:
        m = statistics.median(float(r["corral_rps"]) for r in g)
        p = statistics.median(float(r["corral_p99"]) for r in g)
        print(f"| {name} | {len(g)} | {m:,.0f} | {m / k_med:.2f} | {p:.1f} ms |")
    else:
        print(f"| {name} | 0 | | | |")
print()
print(f"Median bare Kestrel: {k_med:,.0f} req/s.")
PY
log "wrote bench/results/connection-split.md"
