#!/usr/bin/env bash
# Reproduces the seed's two tables side by side: Corral, bare Kestrel and the real Gunicorn.
#
#   IO table:  n (10) requests at once to an endpoint that blocks t s (Thread.Sleep / time.sleep).
#   CPU table: n = 1..N requests at once to an endpoint doing a fixed amount of CPU work that
#              takes ~t s alone (calibrated per runtime, so the tables compare scheduling).
#
# Every server is started once, all of them stay up, and the measurements alternate between
# them. A server that fails to build or start is skipped and reported as not available.
# Writes bench/results/seed-tables.{md,svg,json}; raw data and logs go to bench/out/.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/seed-tables.sh [--quick] [options]
  --quick              IO t=1 s, CPU t=1 s, CPU n=1..6            (about 2-4 minutes)
  (default)            IO t=5 s (the seed's), CPU t=2 s, n=1..10  (about 6 min without Corral, 12 with)
  --io-seconds T       how long each /io-bound request blocks
  --io-n N             requests at once in the IO table (default 10, the seed's)
  --cpu-seconds T      how long one /cpu-bound request takes alone (calibrated)
  --cpu-max N          CPU table rows n = 1..N
  --corral DLL         a built corral.dll to use instead of building src/Corral
  --no-corral          leave Corral out (its columns say so)
  --rounds R           repeat both tables R times (alternating); the report shows medians
  --results DIR        where the .md/.svg/.json go (default bench/results)
USAGE
}

IO_S=5 IO_N=10 CPU_S=2 CPU_MAX=10 MODE=full CORRAL_DLL="" NO_CORRAL=0 RESULTS_DIR="" ROUNDS=1
ARGS_SHOWN="$*"
while (($#)); do
  case $1 in
    --quick) IO_S=1 CPU_S=1 CPU_MAX=6 MODE=quick ;;
    --io-seconds) IO_S=$2; shift ;;
    --io-n) IO_N=$2; shift ;;
    --cpu-seconds) CPU_S=$2; shift ;;
    --cpu-max) CPU_MAX=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
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
require_tools dotnet gunicorn curl python3 timeout setsid
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
OUT="$BENCH_DIR/out/seed-tables-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT" "$RESULTS_DIR"
RAW="$OUT/raw.jsonl" STATUS="$OUT/servers.tsv" META="$OUT/meta.tsv"
: >"$RAW"
trap 'stop_all_servers' EXIT
trap 'exit 130' INT TERM
T0=$SECONDS

IO_MS=$(python3 -c "print(round($IO_S * 1000))")
CPU_MS=$(python3 -c "print(round($CPU_S * 1000))")
REQ_TIMEOUT=$(( (IO_N * IO_MS / 1000) + 60 ))   # the seed's client used 60 s; sync -w 1 needs n*t

# ---- servers ---------------------------------------------------------------------------------
# id | label | kind (corral/kestrel/gunicorn) | args
SERVERS=(
  "corral-sync-w1|Corral sync -w 1|corral|-k sync -w 1"
  "corral-sync-w2|Corral sync -w 2|corral|-k sync -w 2"
  "corral-gthread-w1t2|Corral gthread -w 1 --threads 2|corral|-k gthread -w 1 --threads 2"
  "corral-async-w1|Corral async -w 1|corral|-k async -w 1"
  "kestrel|bare Kestrel|kestrel|"
  "gunicorn-sync-w1|Gunicorn sync -w 1|gunicorn|-w 1"
  "gunicorn-sync-w2|Gunicorn sync -w 2|gunicorn|-w 2"
  "gunicorn-gthread-w1t2|Gunicorn gthread -w 1 --threads 2|gunicorn|-w 1 --threads 2"
  "gunicorn-gevent-w1|Gunicorn gevent -w 1|gunicorn|-w 1 -k gevent"
)
# Measurement order: alternate Corral / Gunicorn / Kestrel.
IO_ORDER=(corral-sync-w1 gunicorn-sync-w1 kestrel corral-sync-w2 gunicorn-sync-w2
  corral-gthread-w1t2 gunicorn-gthread-w1t2 corral-async-w1 gunicorn-gevent-w1)
IO_ASYNC_ORDER=(kestrel corral-async-w1)
CPU_ORDER=(corral-sync-w1 gunicorn-sync-w1 kestrel corral-sync-w2 gunicorn-sync-w2)

declare -A LABEL=() KIND=() SARGS=()
for s in "${SERVERS[@]}"; do
  IFS='|' read -r id label kind sargs <<<"$s"
  LABEL[$id]=$label KIND[$id]=$kind SARGS[$id]=$sargs
done

log "building bench/BenchApp and bench/SeedClient"
build_dotnet "$BENCH_DIR/BenchApp" || { log "BenchApp does not build"; exit 1; }
build_dotnet "$BENCH_DIR/SeedClient" || { log "SeedClient does not build"; exit 1; }

resolve_corral

start_one() {
  start_bench_server "$1" "${KIND[$1]}" "${SARGS[$1]}" "$OUT" || return 1
  wait_ready "$1" "${SERVER_PORT[$1]}" 60 "$OUT"
}

for s in "${SERVERS[@]}"; do
  id=${s%%|*}
  if start_one "$id"; then
    log "${LABEL[$id]}: up on port ${SERVER_PORT[$id]}"
  else
    log "${KIND[$id]}: not available (${SERVER_NOTE[$id]}) — ${LABEL[$id]} skipped"
  fi
done
up() { [[ -n ${SERVER_PGID[$1]:-} ]]; }
up kestrel || { log "bare Kestrel did not start: ${SERVER_NOTE[kestrel]}"; exit 1; }

# ---- helpers ---------------------------------------------------------------------------------
get() { curl -s --max-time 120 "http://127.0.0.1:${SERVER_PORT[$1]}$2"; }
cost_ms() { get "$1" "$2" | sed -n 's/.*cost \([0-9]*\) ms.*/\1/p'; }

# measure TABLE ID PATH N: one run of the seed client, appended to raw.jsonl.
measure() {
  local table=$1 id=$2 path=$3 n=$4 json rc=0
  if ! up "$id"; then return 0; fi
  LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
  local before after other=null
  before=$(python3 "$BENCH_DIR/measure.py" snap "${SERVER_PGID[@]}")
  json=$(timeout $((REQ_TIMEOUT + 30)) dotnet "$SEED_CLIENT_DLL" --url "http://127.0.0.1:${SERVER_PORT[$id]}$path" \
    -n "$n" --timeout "$REQ_TIMEOUT" 2>>"$OUT/client.err") || rc=$?
  after=$(python3 "$BENCH_DIR/measure.py" snap "${SERVER_PGID[@]}")
  if [[ -z $json ]]; then
    json=null
  else
    # share of the machine's CPU used by anything but our servers and this client during the run
    # shellcheck disable=SC2046,SC2086
    other=$(python3 "$BENCH_DIR/measure.py" other-load $before $after \
      "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_cpu_ms"] / 1000)' "$json")" "$(nproc)")
  fi
  printf '{"table":"%s","server":"%s","n":%s,"round":%s,"path":"%s","rc":%s,"load":"%s","other_pct":%s,"result":%s}\n' \
    "$table" "$id" "$n" "$ROUND" "$path" "$rc" "$LOAD_BEFORE" "$other" "$json" >>"$RAW"
  log "$(printf '%-8s %-34s n=%-2s other load %3s%%  %s' "$table" "${LABEL[$id]}" "$n" "$other" \
    "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("failed" if not r else "%.2f s" % (r["total_ms"] / 1000) + (" (%d errors: %s)" % (r["errors"], r["first_error"]) if r["errors"] else ""))' "$json")")"
}

# calibrate ID START_ITERS: iterations of /cpu-bound that take CPU_MS alone on that server.
calibrate() {
  local id=$1 iters=$2 best ms i
  get "$id" "/cpu-bound?iters=$iters" >/dev/null # JIT warm-up
  for _ in 1 2; do # aim the probe at ~1/4 of the target, then measure it three times
    ms=$(cost_ms "$id" "/cpu-bound?iters=$iters")
    ((ms > 0)) || ms=1
    iters=$(python3 -c "print(max(1000, int($iters * ($CPU_MS / 4) / $ms)))")
  done
  best=""
  for i in 1 2 3; do
    ms=$(cost_ms "$id" "/cpu-bound?iters=$iters")
    if [[ -z $best ]] || ((ms < best)); then best=$ms; fi
  done
  ((best > 0)) || best=1
  python3 -c "print(int($iters * $CPU_MS / $best))"
}

# ---- calibration + warm-up -------------------------------------------------------------------
log "calibrating /cpu-bound to ${CPU_S} s per request"
DOTNET_ITERS=$(calibrate kestrel 20000000)
PY_CAL=gunicorn-sync-w1
up "$PY_CAL" || PY_CAL=gunicorn-sync-w2
PY_ITERS=0
if up "$PY_CAL"; then PY_ITERS=$(calibrate "$PY_CAL" 200000); fi
log "iterations: .NET $DOTNET_ITERS, Python $PY_ITERS"
cpu_path() { if [[ ${KIND[$1]} == gunicorn ]]; then echo "/cpu-bound?iters=$PY_ITERS"; else echo "/cpu-bound?iters=$DOTNET_ITERS"; fi; }

log "warming up every server (JIT: a few short CPU requests, 2 at a time, reach each worker)"
for s in "${SERVERS[@]}"; do
  id=${s%%|*}
  up "$id" || continue
  small=$(( $(cpu_path "$id" | sed 's/.*=//') / 40 ))
  for _ in 1 2 3; do
    get "$id" "/cpu-bound?iters=$small" >/dev/null &
    p1=$!
    get "$id" "/cpu-bound?iters=$small" >/dev/null &
    p2=$!
    wait "$p1" "$p2" || true   # never a bare `wait`: the servers are children too
  done
  get "$id" "/io-bound?ms=10" >/dev/null
  get "$id" "/io-bound-async?ms=10" >/dev/null
done

# ---- the tables ------------------------------------------------------------------------------
# IO first: bare Kestrel's thread pool is still at its start size (one thread per core) then.
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  log "round $ROUND/$ROUNDS — IO table: $IO_N requests at once, each blocking $IO_S s"
  for id in "${IO_ORDER[@]}"; do measure io "$id" "/io-bound?ms=$IO_MS" "$IO_N"; done
  for id in "${IO_ASYNC_ORDER[@]}"; do measure io-async "$id" "/io-bound-async?ms=$IO_MS" "$IO_N"; done

  log "round $ROUND/$ROUNDS — CPU table: n = 1..$CPU_MAX requests at once, each ~$CPU_S s of CPU alone"
  for ((n = 1; n <= CPU_MAX; n++)); do
    for id in "${CPU_ORDER[@]}"; do measure cpu "$id" "$(cpu_path "$id")" "$n"; done
  done
done

stop_all_servers
ELAPSED=$((SECONDS - T0))

# ---- results ---------------------------------------------------------------------------------
{
  printf 'command\tbench/seed-tables.sh %s\n' "$ARGS_SHOWN"
  printf 'mode\t%s\n' "$MODE"
  printf 'rounds\t%s\n' "$ROUNDS"
  printf 'io_ms\t%s\nio_n\t%s\ncpu_ms\t%s\ncpu_max\t%s\n' "$IO_MS" "$IO_N" "$CPU_MS" "$CPU_MAX"
  printf 'dotnet_iters\t%s\npython_iters\t%s\n' "$DOTNET_ITERS" "$PY_ITERS"
  printf 'elapsed_s\t%s\n' "$ELAPSED"
  machine_facts
} >"$META"
for s in "${SERVERS[@]}"; do
  id=${s%%|*}
  printf '%s\t%s\t%s\t%s\t%s\n' "$id" "${LABEL[$id]}" "${KIND[$id]}" \
    "${SERVER_NOTE[$id]:-}" "${SERVER_CMD[$id]:-}" >>"$STATUS"
done
python3 "$BENCH_DIR/report.py" seed --raw "$RAW" --meta "$META" --servers "$STATUS" \
  --md "$RESULTS_DIR/seed-tables.md" --svg "$RESULTS_DIR/seed-tables.svg" --json "$RESULTS_DIR/seed-tables.json"
log "done in ${ELAPSED} s: $(tidy <<<"$RESULTS_DIR")/seed-tables.md, .svg, .json (raw: $(tidy <<<"$OUT"))"
