#!/usr/bin/env bash
# Which GC should corral's workers default to? (#2 item 4) Runs corral -k async on BenchApp with
# --gc server and --gc workstation, -w 1 and -w 4, alternating, several rounds. For each run:
# wrk on `/` (keep-alive) for req/s and latency, and the VmRSS of every worker (the master's
# children) read from /proc/PID/status right after the load, and once before it (idle).
# Writes bench/results/gc.{md,json}; raw output goes to bench/out/.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/gc.sh [--quick] [options]
  --quick            wrk 5 s, 2 rounds, -w 1 and 4                 (about 2 minutes)
  (default)          wrk 10 s, 3 rounds, -w 1 and 4                (about 5 minutes)
  --duration S       seconds per measured wrk run (default 10)
  --rounds R         rounds; each runs every configuration once, the order reversed every other round
  --workers "1 4"    the -w values
  --gcs "server workstation app"   the --gc values (default: server workstation)
  --connections C    wrk -c (default 64)
  --wrk-threads T    wrk -t (default 2)
  --corral DLL       a built corral.dll to use instead of building src/Corral
  --results DIR      where gc.md/.json go (default bench/results)
USAGE
}

DURATION=10 ROUNDS=3 WORKERS="1 4" GCS="server workstation" CONNS=64 WRK_T=2 MODE=full
CORRAL_DLL="" RESULTS_DIR=""
ARGS_SHOWN="$*"
while (($#)); do
  case $1 in
    --quick) DURATION=5 ROUNDS=2 MODE=quick ;;
    --duration) DURATION=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --gcs) GCS=$2; shift ;;
    --connections) CONNS=$2; shift ;;
    --wrk-threads) WRK_T=$2; shift ;;
    --corral) CORRAL_DLL=$(realpath "$2"); shift ;;
    --results) RESULTS_DIR=$(realpath -m "$2"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools dotnet curl python3 wrk timeout setsid pgrep
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
OUT="$BENCH_DIR/out/gc-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT" "$RESULTS_DIR"
RAW="$OUT/raw.jsonl" META="$OUT/meta.tsv"
: >"$RAW"
trap 'stop_all_servers' EXIT
trap 'exit 130' INT TERM
T0=$SECONDS

log "building bench/BenchApp"
build_dotnet "$BENCH_DIR/BenchApp" || { log "BenchApp does not build"; exit 1; }
resolve_corral # builds src/Corral unless --corral DLL was given
[[ -z $CORRAL_NOTE ]] || exit 1

# children PID: the pids of PID's children.
children() { pgrep -P "$1" || true; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Server GC threads are named ".NET Server GC" (one per heap); workstation GC has none.
server_gc_threads() { cat /proc/"$1"/task/*/comm 2>/dev/null | grep -cx '.NET Server GC' || true; }
json_list() { local IFS=,; echo "[$*]"; }

# measure GC W: one run of corral -k async -w W --gc GC, appended to raw.jsonl.
measure() {
  local gc=$1 w=$2 id="gc-$1-w$2" port master workers=() i start f
  port=$(next_port)
  start_server "$id" "$OUT" dotnet "$CORRAL_DLL" -k async -w "$w" --gc "$gc" -b "127.0.0.1:$port" "$BENCH_APP_DLL"
  if ! wait_ready "$id" "$port" 60 "$OUT"; then
    log "corral --gc $gc -w $w: ${SERVER_NOTE[$id]}"
    printf '{"round":%s,"gc":"%s","workers":%s,"error":"%s"}\n' "$ROUND" "$gc" "$w" "${SERVER_NOTE[$id]//\"/\'}" >>"$RAW"
    return 0
  fi
  # the process tree: timeout (pgid leader) -> dotnet corral.dll (master) -> the workers
  master=$(children "${SERVER_PGID[$id]}" | head -n1)
  start=$SECONDS
  while :; do
    mapfile -t workers < <(children "$master")
    ((${#workers[@]} >= w || SECONDS - start > 60)) && break
    sleep 0.3
  done
  sleep 2 # every worker listening and idle
  local idle=() load=() gcth=() envgc=()
  for i in "${workers[@]}"; do idle+=("$(rss_kb "$i")"); done
  timeout 30 wrk -t"$WRK_T" -c"$CONNS" -d3s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true # warm-up (JIT)
  f="$OUT/wrk-$id-r$ROUND.txt"
  local before after tm client=0 other=null
  before=$(python3 "$BENCH_DIR/measure.py" snap "${SERVER_PGID[$id]}")
  tm=$( { TIMEFORMAT='%U %S'; time timeout $((DURATION + 30)) wrk -t"$WRK_T" -c"$CONNS" -d"${DURATION}s" --latency \
    "http://127.0.0.1:$port/" >"$f" 2>&1; } 2>&1 ) || true
  after=$(python3 "$BENCH_DIR/measure.py" snap "${SERVER_PGID[$id]}")
  client=$(awk '{print $1 + $2}' <<<"$tm")
  # shellcheck disable=SC2086
  other=$(python3 "$BENCH_DIR/measure.py" other-load $before $after "$client" "$(nproc)")
  mapfile -t workers < <(children "$master") # a worker may have been replaced: read what is there
  for i in "${workers[@]}"; do
    load+=("$(rss_kb "$i")")
    gcth+=("$(server_gc_threads "$i")")
    envgc+=("\"$(tr '\0' '\n' <"/proc/$i/environ" 2>/dev/null | sed -n 's/^DOTNET_gcServer=//p')\"")
  done
  local mrss
  mrss=$(rss_kb "$master")
  stop_server "$id"
  printf '{"round":%s,"gc":"%s","workers":%s,"port":%s,"other_pct":%s,"load":"%s","rss_idle_kb":%s,"rss_kb":%s,"master_rss_kb":%s,"server_gc_threads":%s,"env_gcServer":%s,"wrk":%s}\n' \
    "$ROUND" "$gc" "$w" "$port" "$other" "$(cut -d' ' -f1 /proc/loadavg)" "$(json_list "${idle[@]}")" \
    "$(json_list "${load[@]}")" "$mrss" "$(json_list "${gcth[@]}")" "$(json_list "${envgc[@]}")" \
    "$(python3 "$BENCH_DIR/measure.py" wrk <"$f")" >>"$RAW"
  log "$(tail -n1 "$RAW" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); w = r["wrk"]
print("--gc %-11s -w %s  %s req/s, p99 %s ms, RSS per worker %s MiB (idle %s), total %.0f MiB, other load %s%%" % (
    r["gc"], r["workers"], "%.0f" % w["rps"] if w["rps"] else "failed", w["p99_ms"],
    "/".join("%.0f" % (k / 1024) for k in r["rss_kb"]), "/".join("%.0f" % (k / 1024) for k in r["rss_idle_kb"]),
    sum(r["rss_kb"]) / 1024, r["other_pct"]))')"
}

CONFIGS=()
for w in $WORKERS; do for gc in $GCS; do CONFIGS+=("$gc $w"); done; done
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  log "round $ROUND/$ROUNDS"
  order=("${CONFIGS[@]}")
  if ((ROUND % 2 == 0)); then
    order=()
    for ((i = ${#CONFIGS[@]} - 1; i >= 0; i--)); do order+=("${CONFIGS[$i]}"); done
  fi
  for c in "${order[@]}"; do
    # shellcheck disable=SC2086
    measure $c
  done
done
ELAPSED=$((SECONDS - T0))

{
  printf 'command\tbench/gc.sh %s\n' "$ARGS_SHOWN"
  printf 'mode\t%s\nrounds\t%s\n' "$MODE" "$ROUNDS"
  printf 'corral\tdotnet src/Corral/bin/Release/net10.0/corral.dll -k async -w W --gc GC -b 127.0.0.1:PORT bench/BenchApp/bin/Release/net10.0/BenchApp.dll\n'
  printf 'wrk\twrk -t%s -c%s -d%ss --latency http://127.0.0.1:PORT/\n' "$WRK_T" "$CONNS" "$DURATION"
  printf 'elapsed_s\t%s\n' "$ELAPSED"
  machine_facts
} >"$META"
python3 "$BENCH_DIR/report.py" gc --raw "$RAW" --meta "$META" --servers /dev/null \
  --md "$RESULTS_DIR/gc.md" --json "$RESULTS_DIR/gc.json"
log "done in ${ELAPSED} s: $(tidy <<<"$RESULTS_DIR")/gc.md, .json (raw: $(tidy <<<"$OUT"))"
