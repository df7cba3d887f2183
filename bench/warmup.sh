#!/usr/bin/env bash
# What --warmup-requests buys: the first request a new worker answers after a reload (HUP), with and
# without a warm-up, and how much later the new worker is ready.
#
#   bench/warmup.sh [--rounds R] [--warmup N]
#
# SeedApp (Production, Redis running) under corral -w 1, no load. One corral per setting; each round
# sends HUP, waits for the new worker's "Worker ready" and for the old one to exit, then times two
# requests to / with curl. Writes bench/results/warmup.md. About 2 s per round and setting.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=10
WARMUP=100
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--warmup N]" >&2; exit 2 ;;
  esac
done
require_count --rounds "$ROUNDS"
require_count --warmup "$WARMUP"
require_tools curl redis-server

OUT="$BENCH_DIR/out/warmup"
rm -rf "$OUT" && mkdir -p "$OUT"
seedapp_with_redis "$OUT" 1800

ms() { date +%s%3N; }
# ready_count LOG: how many "Worker ready" lines the master has logged.
ready_count() { grep -c "Worker ready" "$1" || true; }

declare -a ROWS=()
measure() {
  local name=$1; shift
  local log firsts="" seconds="" readies="" r n t0 t1 first second
  log="$OUT/$name.corral.log"
  seedapp_corral "$log" 900 "$SEED_DLL" "$@" || { log "$name: no worker ready (see $log)"; exit 1; }
  curl -fs -o /dev/null "http://127.0.0.1:$PORT/"
  for r in $(seq 1 "$ROUNDS"); do
    n=$(ready_count "$log")
    t0=$(ms)
    kill -HUP "$MASTER"
    for _ in $(seq 1 3000); do [ "$(ready_count "$log")" -gt "$n" ] && break; sleep 0.01; done
    [ "$(ready_count "$log")" -gt "$n" ] || { log "$name: no new worker ready 30 s after HUP (see $log)"; exit 1; }
    t1=$(ms)
    # The old worker drains (it has no connection) and exits: the next request can only reach the new one.
    for _ in $(seq 1 300); do [ "$(pgrep -c -P "$MASTER")" -eq 1 ] && break; sleep 0.01; done
    first=$(curl -fs -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/")
    second=$(curl -fs -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/")
    firsts="$firsts $(awk -v t="$first" 'BEGIN {printf "%.1f", t * 1000}')"
    seconds="$seconds $(awk -v t="$second" 'BEGIN {printf "%.1f", t * 1000}')"
    readies="$readies $((t1 - t0))"
  done
  stop_master "$MASTER"
  MASTER=""
  ROWS+=("$name|$*|$firsts|$seconds|$readies")
  log "$name: first request (ms):$firsts"
}

measure "no-warmup"
measure "warmup-$WARMUP" --warmup-requests "$WARMUP"

{
  echo "# Warm-up: the first request after a reload (\`--warmup-requests\`)"
  echo
  echo "SeedApp (Production, Redis running) under corral \`-w 1\`, no load. Each round: HUP, wait for the new worker's \"Worker ready\" and"
  echo "for the old worker's exit, then time two requests to \`/\` with curl (a new connection each). \"HUP to ready\" is the time from the"
  echo "signal to the master's \"Worker ready\" line (the new worker's boot, and its warm-up)."
  echo
  echo "- command: \`bench/warmup.sh --rounds $ROUNDS --warmup $WARMUP\`"
  result_facts
  echo
  echo "| corral flags | first request, ms (median) | per round | second request, ms (median) | HUP to ready, ms (median) | per round |"
  echo "|---|---:|---|---:|---:|---|"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r name flags firsts seconds readies <<<"$row"
    printf '| %s | %s | %s | %s | %s | %s |\n' "${flags:-(none)}" "$(echo "$firsts" | median)" "${firsts# }" \
      "$(echo "$seconds" | median)" "$(echo "$readies" | median)" "${readies# }"
  done
} | tidy >"$BENCH_DIR/results/warmup.md"
cat "$BENCH_DIR/results/warmup.md"
