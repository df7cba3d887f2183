#!/usr/bin/env bash
# Throughput of `GET /` with keep-alive: wrk against Corral (-k async -w 2, and -w 1), bare Kestrel and the
# best Gunicorn configuration found here (gthread and gevent, -w 2..5, each tried first with a
# short wrk run). Several rounds alternate the servers; the report shows the median round, p50,
# p90 and p99 latency, and the ratio to bare Kestrel. Corral is skipped, with a note, when it does
# not build or start. Writes bench/results/throughput.{md,json}; raw output goes to bench/out/.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/throughput.sh [--quick] [options]
  --quick            wrk 5 s, 2 rounds, Gunicorn candidates tried 3 s each    (about 2 minutes)
  (default)          wrk 10 s, 3 rounds, Gunicorn candidates tried 5 s each   (about 4 minutes)
  --duration S       seconds per measured wrk run
  --rounds R         rounds alternating the servers
  --connections C    wrk -c (default 64)
  --wrk-threads T    wrk -t (default 2)
  --corral DLL       a built corral.dll to use instead of building src/Corral
  --no-corral        leave Corral out
  --results DIR      where the .md/.json go (default bench/results)
USAGE
}

DURATION=10 ROUNDS=3 PICK_S=5 CONNS=64 WRK_T=2 MODE=full CORRAL_DLL="" NO_CORRAL=0 RESULTS_DIR=""
ARGS_SHOWN="$*"
while (($#)); do
  case $1 in
    --quick) DURATION=5 ROUNDS=2 PICK_S=3 MODE=quick ;;
    --duration) DURATION=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --connections) CONNS=$2; shift ;;
    --wrk-threads) WRK_T=$2; shift ;;
    --corral) CORRAL_DLL=$(realpath "$2"); shift ;;
    --no-corral) NO_CORRAL=1 ;;
    --results) RESULTS_DIR=$(realpath -m "$2"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools dotnet gunicorn curl python3 wrk timeout setsid
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
OUT="$BENCH_DIR/out/throughput-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT" "$RESULTS_DIR"
RAW="$OUT/raw.jsonl" STATUS="$OUT/servers.tsv" META="$OUT/meta.tsv"
: >"$RAW"
trap 'stop_all_servers' EXIT
trap 'exit 130' INT TERM
T0=$SECONDS

log "building bench/BenchApp"
build_dotnet "$BENCH_DIR/BenchApp" || { log "BenchApp does not build"; exit 1; }
resolve_corral

# run_wrk PHASE ID LABEL PORT SECONDS: one wrk run, parsed and appended to raw.jsonl.
run_wrk() {
  local phase=$1 id=$2 label=$3 port=$4 secs=$5 f json
  f="$OUT/wrk-$phase-$id-$(date +%H%M%S).txt"
  timeout $((secs + 30)) wrk -t"$WRK_T" -c"$CONNS" -d"${secs}s" --latency "http://127.0.0.1:$port/" >"$f" 2>&1 || true
  json=$(python3 "$BENCH_DIR/measure.py" wrk <"$f")
  printf '{"phase":"%s","server":"%s","label":"%s","round":%s,"load":"%s","wrk":%s}\n' \
    "$phase" "$id" "$label" "${ROUND:-0}" "$(cut -d' ' -f1 /proc/loadavg)" "$json" |
    python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); w=r.pop("wrk"); r.update(w); print(json.dumps(r))' >>"$RAW"
  log "$(printf '%-6s %-40s %s' "$phase" "$label" "$(python3 -c 'import json,sys; w=json.loads(sys.argv[1]); print("failed" if not w.get("rps") else "%.0f req/s, p50 %.2f ms, p99 %.2f ms" % (w["rps"], w["p50_ms"], w["p99_ms"]))' "$json")")"
}

# ---- pick the best Gunicorn configuration ----------------------------------------------------
CANDIDATES=()
for w in 2 3 4 5; do CANDIDATES+=("-k gthread -w $w --threads 4" "-k gevent -w $w"); done
log "trying ${#CANDIDATES[@]} Gunicorn configurations, ${PICK_S} s of wrk each, one at a time"
BEST="" BEST_RPS=0
for c in "${CANDIDATES[@]}"; do
  start_bench_server pick gunicorn "$c" "$OUT"
  port=${SERVER_PORT[pick]}
  if wait_ready pick "$port" 60 "$OUT"; then
    timeout 20 wrk -t1 -c8 -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true # warm-up
    run_wrk pick gunicorn "$c" "$port" "$PICK_S"
    rps=$(tail -n1 "$RAW" | python3 -c 'import json,sys; print(int(json.loads(sys.stdin.read()).get("rps") or 0))')
    if ((rps > BEST_RPS)); then BEST=$c BEST_RPS=$rps; fi
  else
    log "gunicorn $c: ${SERVER_NOTE[pick]}"
  fi
  stop_server pick
done
[[ -n $BEST ]] || { log "no Gunicorn configuration worked"; exit 1; }
log "best Gunicorn: $BEST ($BEST_RPS req/s)"

# ---- the measured servers --------------------------------------------------------------------
# -w 1 as well: one async worker uses every core, and on a busy 2-core machine it can beat -w 2 (the addendum in results/throughput.md).
SERVERS=(corral-async-w2 kestrel gunicorn-best corral-async-w1)
declare -A LABEL=([corral-async-w2]="Corral async -w 2" [kestrel]="bare Kestrel" [gunicorn-best]="Gunicorn $BEST" [corral-async-w1]="Corral async -w 1")
declare -A KIND=([corral-async-w2]=corral [kestrel]=kestrel [gunicorn-best]=gunicorn [corral-async-w1]=corral)
declare -A SARGS=([corral-async-w2]="-k async -w 2" [kestrel]="" [gunicorn-best]="$BEST" [corral-async-w1]="-k async -w 1")
for id in "${SERVERS[@]}"; do
  start_bench_server "$id" "${KIND[$id]}" "${SARGS[$id]}" "$OUT" || continue
  port=${SERVER_PORT[$id]}
  if wait_ready "$id" "$port" 60 "$OUT"; then
    log "${LABEL[$id]}: up on port $port"
    timeout 30 wrk -t"$WRK_T" -c"$CONNS" -d3s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true # warm-up (JIT)
  else
    log "${KIND[$id]}: not available (${SERVER_NOTE[$id]}) — ${LABEL[$id]} skipped"
  fi
done
[[ -n ${SERVER_PGID[kestrel]:-} ]] || { log "bare Kestrel did not start: ${SERVER_NOTE[kestrel]}"; exit 1; }

for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for id in "${SERVERS[@]}"; do
    [[ -n ${SERVER_PGID[$id]:-} ]] || continue
    run_wrk round "$id" "${LABEL[$id]}" "${SERVER_PORT[$id]}" "$DURATION"
  done
done
stop_all_servers
ELAPSED=$((SECONDS - T0))

{
  printf 'command\tbench/throughput.sh %s\n' "$ARGS_SHOWN"
  printf 'mode\t%s\nrounds\t%s\n' "$MODE" "$ROUNDS"
  printf 'wrk\twrk -t%s -c%s -d%ss --latency http://127.0.0.1:PORT/\n' "$WRK_T" "$CONNS" "$DURATION"
  printf 'pick_wrk\twrk -t%s -c%s -d%ss --latency\n' "$WRK_T" "$CONNS" "$PICK_S"
  printf 'gunicorn_best\t%s\n' "$BEST"
  printf 'elapsed_s\t%s\n' "$ELAPSED"
  machine_facts
} >"$META"
for id in "${SERVERS[@]}"; do
  printf '%s\t%s\t%s\t%s\t%s\n' "$id" "${LABEL[$id]}" "${KIND[$id]}" "${SERVER_NOTE[$id]:-}" "${SERVER_CMD[$id]:-}" >>"$STATUS"
done
python3 "$BENCH_DIR/report.py" throughput --raw "$RAW" --meta "$META" --servers "$STATUS" \
  --md "$RESULTS_DIR/throughput.md" --json "$RESULTS_DIR/throughput.json"
log "done in ${ELAPSED} s: $(tidy <<<"$RESULTS_DIR")/throughput.md, .json (raw: $(tidy <<<"$OUT"))"
