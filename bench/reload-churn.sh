#!/usr/bin/env bash
# Reloads and recycling under load, corral against the real Gunicorn, in alternating rounds (issue #19 §2):
#   - fast churn: HUP every 3 s during wrk, corral -k async -w 2 on BenchApp and Gunicorn on bench/flask's
#     app (the same endpoint), one after the other in each round: req/s and failed requests;
#   - realistic churn: corral quiet, corral with a HUP every 15 s, and corral with --max-worker-lifetime 60
#     (each worker recycled about once a minute; that corral runs all along, so its recycles fall in its
#     runs): req/s against the same round's quiet run.
# Every server runs for the whole run, started once (ports from BENCH_BASE_PORT, default 18100).
# Writes bench/results/reload-churn.md (or --out FILE).
#
#   bench/reload-churn.sh [--rounds R] [--fast S] [--slow S] [--gunicorn "ARGS"] [--out FILE]
#   (defaults: 3 rounds, 30 s fast-churn runs, 60 s realistic-churn runs, Gunicorn -k gevent -w 2: about 15 minutes)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=3
FAST=30
SLOW=60
GUNICORN_ARGS="-k gevent -w 2"
RESULT="$BENCH_DIR/results/reload-churn.md"
ARGS_SHOWN=""
for a in "$@"; do [[ $a == *" "* || -z $a ]] && ARGS_SHOWN+="\"$a\" " || ARGS_SHOWN+="$a "; done
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --fast) FAST=$2; shift 2 ;;
    --slow) SLOW=$2; shift 2 ;;
    --gunicorn) GUNICORN_ARGS=$2; shift 2 ;;
    --out) RESULT=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--fast S] [--slow S] [--gunicorn \"ARGS\"] [--out FILE]" >&2; exit 2 ;;
  esac
done
require_count --rounds "$ROUNDS"
require_count --fast "$FAST"
require_count --slow "$SLOW"
require_tools dotnet wrk gunicorn curl python3 setsid timeout

OUT="$BENCH_DIR/out/reload-churn"
rm -rf "$OUT" && mkdir -p "$OUT"
trap stop_all_servers EXIT
log "building corral and BenchApp (Release)"
build_dotnet "$ROOT_DIR/src/Corral"
build_dotnet "$BENCH_DIR/BenchApp"
CORRAL_DLL=$CORRAL_DLL_DEFAULT

IDS=(corral corral-lifetime gunicorn)
declare -A MASTER_OF=()
declare -A KIND=([corral]=corral [corral-lifetime]=corral [gunicorn]=gunicorn)
declare -A SARGS=([corral]="-k async -w 2" [corral-lifetime]="-k async -w 2 --max-worker-lifetime 60" [gunicorn]="$GUNICORN_ARGS")
for id in "${IDS[@]}"; do
  start_bench_server "$id" "${KIND[$id]}" "${SARGS[$id]}" "$OUT"
  NEXT_PORT=$((SERVER_PORT[$id] + 1)) # next_port ran in a subshell
done
for id in "${IDS[@]}"; do
  wait_ready "$id" "${SERVER_PORT[$id]}" 90 "$OUT" || { log "$id did not start: ${SERVER_NOTE[$id]}"; exit 1; }
  # The master: timeout's child (setsid ran timeout in place).
  MASTER_OF[$id]=$(pgrep -P "${SERVER_PGID[$id]}" | head -1)
done

# measure NAME ID SECONDS HUP_EVERY (0: none): wrk -t2 -c50 during SECONDS, a HUP to ID's master every
# HUP_EVERY s meanwhile. Appends "round name id rps p99 errors reloads recycles" to rounds.tsv.
measure() {
  local name=$1 id=$2 secs=$3 every=$4 port=${SERVER_PORT[$2]} master=${MASTER_OF[$2]} hup=""
  local lines0 hups=0
  timeout 30 wrk -t2 -c50 -d3s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
  lines0=$(wc -l <"$OUT/$id.log")
  if ((every > 0)); then
    (while sleep "$every"; do kill -HUP "$master"; echo hup; done) >"$OUT/$name-$r.hups" 2>&1 &
    hup=$!
  fi
  timeout $((secs + 30)) wrk -t2 -c50 -d"${secs}s" --latency "http://127.0.0.1:$port/" >"$OUT/$name-$r.wrk" 2>&1 || true
  [[ -n $hup ]] && { kill "$hup" 2>/dev/null; wait "$hup" 2>/dev/null || true; hups=$(grep -c hup "$OUT/$name-$r.hups" || true); }
  # Recycles during the run, from the server's log (corral: --max-worker-lifetime's line; Gunicorn has none here).
  local recycles
  recycles=$(tail -n +"$((lines0 + 1))" "$OUT/$id.log" | grep -c "reached --max-worker-lifetime" || true)
  # wrk's "timeout" errors are answers slower than its 2 s timeout (they still arrive), not failures: counted apart.
  local slow
  slow=$(awk -F'[ ,]+' '/Socket errors/ {print $11}' "$OUT/$name-$r.wrk"); slow=${slow:-0}
  python3 "$BENCH_DIR/measure.py" wrk <"$OUT/$name-$r.wrk" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(*sys.argv[1:4], r["rps"], r["p99_ms"], r["errors"] - int(sys.argv[6]), *sys.argv[4:], sep="\t")' "$r" "$name" "$id" "$hups" "$recycles" "$slow" >>"$OUT/rounds.tsv"
  log "round $r $name: $(tail -1 "$OUT/rounds.tsv" | cut -f4-)"
  # Let the last reload's old workers finish draining before the next run.
  sleep 3
}

printf 'round\tname\tid\trps\tp99\terrors\thups\trecycles\tslow\n' >"$OUT/rounds.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then
    measure corral-hup3 corral "$FAST" 3
    measure gunicorn-hup3 gunicorn "$FAST" 3
  else
    measure gunicorn-hup3 gunicorn "$FAST" 3
    measure corral-hup3 corral "$FAST" 3
  fi
  measure gunicorn-quiet gunicorn "$FAST" 0
  measure corral-quiet corral "$SLOW" 0
  measure corral-hup15 corral "$SLOW" 15
  measure corral-lifetime60 corral-lifetime "$SLOW" 0
done
for id in "${IDS[@]}"; do printf '%s\t%s\n' "$id" "${SERVER_CMD[$id]}" >>"$OUT/servers.tsv"; done
stop_all_servers

machine_facts >"$OUT/meta.tsv"
python3 - "$OUT/rounds.tsv" "$OUT/meta.tsv" "$OUT/servers.tsv" "bench/reload-churn.sh $ARGS_SHOWN" "$FAST" "$SLOW" >"$RESULT" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
meta = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[2]) if "\t" in l)
servers = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[3])]
cmd, fast, slow = sys.argv[4], sys.argv[5], sys.argv[6]
rounds = sorted({r["round"] for r in rows}, key=int)
get = {(r["round"], r["name"]): r for r in rows}
med = statistics.median
def ratios(a, b):
    return [float(get[(k, a)]["rps"]) / float(get[(k, b)]["rps"]) for k in rounds if (k, a) in get and (k, b) in get]
def col(name, f):
    return [f(get[(k, name)]) for k in rounds if (k, name) in get]
print("# Reloads and recycling under load: corral against Gunicorn (issue #19 §2)")
print()
print(f"- command: `{cmd.strip()}` (ports from `BENCH_BASE_PORT`)")
print(f"- load: `wrk -t2 -c50 --latency` on `/` (corral: BenchApp; Gunicorn: bench/flask's app), {fast} s runs for the HUP-every-3-s pair and Gunicorn quiet, "
      f"{slow} s for corral quiet, HUP every 15 s and --max-worker-lifetime 60, each after a 3 s warm-up; {len(rounds)} rounds, every server started once for the whole run")
print(f"- machine: {meta.get('nproc')} cores, {meta.get('cpu')}, {meta.get('kernel')}, .NET {meta.get('dotnet')}, Gunicorn {meta.get('gunicorn')} ({meta.get('python')}, {meta.get('flask')}); "
      f"date {meta.get('date')}; commit measured {meta.get('commit')}; load average at the end {meta.get('load')}; wrk on the same cores; other jobs ran on the machine")
print()
print("| run | req/s per round | median | p99 (median) | failed requests per round | answers slower than wrk's 2 s timeout, per round | HUPs sent (median) | recycles logged (median) |")
print("|---|---|---:|---:|---|---|---:|---:|")
for name in ["corral-hup3", "gunicorn-hup3", "gunicorn-quiet", "corral-quiet", "corral-hup15", "corral-lifetime60"]:
    rps = col(name, lambda r: float(r["rps"]))
    if not rps:
        continue
    print(f"| {name} | {', '.join(f'{x:,.0f}' for x in rps)} | {med(rps):,.0f} | {med(col(name, lambda r: float(r['p99']))):.2f} ms | "
          f"{', '.join(col(name, lambda r: r['errors']))} | {', '.join(col(name, lambda r: r.get('slow') or '-'))} | {med(col(name, lambda r: int(r['hups']))):g} | {med(col(name, lambda r: int(r['recycles']))):g} |")
print()
print("| target | per round | median | met? |")
print("|---|---|---:|---|")
def target(label, xs, ok):
    if xs:
        print(f"| {label} | {', '.join(f'{x:.2f}' for x in xs)} | {med(xs):.2f} | {'met' if ok(med(xs)) else '**not met**'} |")
target("HUP every 3 s: corral req/s ≥ 3× Gunicorn's (same round)", ratios("corral-hup3", "gunicorn-hup3"), lambda m: m >= 3)
errs = sum(int(r["errors"]) for r in rows if r["name"].startswith("corral"))
print(f"| corral runs with 0 failed requests (socket errors other than wrk's timeout, non-2xx) | all corral runs: {errs} failed | | {'met' if errs == 0 else '**not met**'} |")
target("HUP every 15 s: ≥ 0.95× the round's quiet run", ratios("corral-hup15", "corral-quiet"), lambda m: m >= 0.95)
target("--max-worker-lifetime 60: ≥ 0.95× the round's quiet run", ratios("corral-lifetime60", "corral-quiet"), lambda m: m >= 0.95)
print()
print("Servers:")
print()
for i, c in servers:
    print(f"- {i}: `{c}`")
PY
log "wrote $(tidy <<<"$RESULT")"
