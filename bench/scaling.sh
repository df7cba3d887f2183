#!/usr/bin/env bash
# -w MIN:MAX (issue #19 §1): does an adaptive worker count give the latency of the most workers under
# load and the memory of the fewest when idle? Runs corral -k sync on BenchApp's blocking /io-bound
# with -w 1:4, -w 1 and -w 4 under the same load that rises and falls (bench/scaling_load.py: closed-loop
# clients following a profile), the order rotated every round. Per 5-s window: workers, listen queue,
# p99, total PSS. Writes bench/results/scaling.{md,json,svg}; raw output goes to bench/out/.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/scaling.sh [options]
  --rounds R          rounds; each runs every -w once, the order rotated (default 1)
  --workers "1:4 1 4" the -w values
  --profile P         clients over time, "T:N,..." (default "0:1,20:4,40:12,70:4,90:0")
  --duration S        seconds per run (default 130)
  --path PATH         the request (default /io-bound?ms=50)
  --flags F           further corral flags (default "--scale-down-after 10")
  --corral DLL        a built corral.dll to use instead of building src/Corral
  --results DIR       where scaling.md/.json/.svg go (default bench/results)
USAGE
}

ROUNDS=1 WORKERS="1:4 1 4" PROFILE="0:1,20:4,40:12,70:4,90:0" DURATION=130 REQ_PATH="/io-bound?ms=50"
FLAGS="--scale-down-after 10" CORRAL_DLL="" RESULTS_DIR=""
ARGS_SHOWN="$*"
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --profile) PROFILE=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --path) REQ_PATH=$2; shift ;;
    --flags) FLAGS=$2; shift ;;
    --corral) CORRAL_DLL=$(realpath "$2"); shift ;;
    --results) RESULTS_DIR=$(realpath -m "$2"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

BENCH_BASE_PORT=${BENCH_BASE_PORT:-19100}
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools dotnet curl python3 timeout setsid pgrep
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
OUT="$BENCH_DIR/out/scaling-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT" "$RESULTS_DIR"
RAW="$OUT/raw.jsonl" META="$OUT/meta.tsv"
: >"$RAW"
trap 'stop_all_servers' EXIT
trap 'exit 130' INT TERM

log "building bench/BenchApp"
build_dotnet "$BENCH_DIR/BenchApp" || { log "BenchApp does not build"; exit 1; }
resolve_corral # builds src/Corral unless --corral DLL was given
[[ -z $CORRAL_NOTE ]] || exit 1
machine_facts >"$META"
printf 'command\tbench/scaling.sh %s\n' "$ARGS_SHOWN" >>"$META"

# measure W: one run of corral -k sync -w W under the profile, appended to raw.jsonl.
measure() {
  local w=$1 id="w${1/:/-}-r$ROUND" port master flags
  port=$(next_port)
  read -r -a flags <<<"$FLAGS"
  start_server "$id" "$OUT" dotnet "$CORRAL_DLL" -k sync -w "$w" "${flags[@]}" -b "127.0.0.1:$port" "$BENCH_APP_DLL"
  if ! wait_ready "$id" "$port" 90 "$OUT"; then
    log "corral -w $w: ${SERVER_NOTE[$id]}"
    return
  fi
  master=$(pgrep -P "${SERVER_PGID[$id]}" | head -1)
  sleep 5 # settled: every worker of a fixed -w ready
  log "round $ROUND: -w $w for $DURATION s"
  python3 "$BENCH_DIR/scaling_load.py" --port "$port" --master "$master" --profile "$PROFILE" --duration "$DURATION" \
    --path "$REQ_PATH" --out "$OUT/$id.json"
  python3 - "$OUT/$id.json" "$w" "$ROUND" "corral -k sync -w $w $FLAGS -b 127.0.0.1:PORT bench/BenchApp/bin/Release/net10.0/BenchApp.dll" >>"$RAW" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d.update(id=sys.argv[2], round=int(sys.argv[3]), cmd=sys.argv[4])
print(json.dumps(d))
PY
  grep -h "Scaling \(up\|down\)" "$OUT/$id.log" | sed 's/^/    /' >&2 || true
  stop_server "$id"
}

read -r -a ws <<<"$WORKERS"
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for ((k = 0; k < ${#ws[@]}; k++)); do
    measure "${ws[(k + ROUND - 1) % ${#ws[@]}]}"
  done
done
printf 'load_after\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$META"
python3 "$BENCH_DIR/report.py" scaling --raw "$RAW" --meta "$META" --servers /dev/null \
  --md "$RESULTS_DIR/scaling.md" --json "$RESULTS_DIR/scaling.json" --svg "$RESULTS_DIR/scaling.svg"
log "wrote $(tidy <<<"$RESULTS_DIR")/scaling.{md,json,svg}"
