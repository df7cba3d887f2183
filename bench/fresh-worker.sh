#!/usr/bin/env bash
# Where a new worker's extra CPU goes: a fresh SeedApp worker (corral -w 1) under wrk for three
# windows of W seconds in a row; its CPU per request in each window, for several worker settings.
# The first window against the third is what each reload or recycle costs under load.
#
#   bench/fresh-worker.sh [--rounds R] [--window S]
#
# Settings (in alternation, R rounds): the defaults; --warmup-requests 20000; DOTNET_TieredPGO=0;
# a 64 MB gen0 budget (DOTNET_GCgen0size). Writes bench/results/fresh-worker.md. About 12 s per
# round and setting with the default 3 s windows.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=3
WINDOW=3
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--window S]" >&2; exit 2 ;;
  esac
done
require_count --rounds "$ROUNDS"
[[ $WINDOW =~ ^[1-9][0-9]*$ ]] || { echo "--window: whole seconds above 0, not '$WINDOW'" >&2; exit 2; }
require_tools wrk curl redis-server

OUT="$BENCH_DIR/out/fresh-worker"
rm -rf "$OUT" && mkdir -p "$OUT"
seedapp_with_redis "$OUT" 3600

SETTINGS=("defaults|" "--warmup-requests 20000|--warmup-requests 20000" "DOTNET_TieredPGO=0|-e DOTNET_TieredPGO=0"
  "DOTNET_GCgen0size=0x4000000|-e DOTNET_GCgen0size=0x4000000")
declare -A AT_READY WIN1 WIN2 WIN3

# us_per_req TICKS0 TICKS1 REQUESTS
us_per_req() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) * 1e6 / hz / n}'; }

for r in $(seq 1 "$ROUNDS"); do
  for s in "${!SETTINGS[@]}"; do
    IFS='|' read -r label flags <<<"${SETTINGS[$s]}"
    # shellcheck disable=SC2086 # flags are words
    seedapp_corral "$OUT/$s-r$r.log" 600 "$SEED_DLL" $flags || { log "$label: no worker ready (see $OUT/$s-r$r.log)"; exit 1; }
    worker=$(pgrep -P "$MASTER" | head -1)
    t0=$(cpu_ticks "$worker")
    AT_READY[$s]="${AT_READY[$s]:-} $(awk -v t="$t0" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", t * 1000 / hz}')"
    for w in 1 2 3; do
      n=$(wrk -t2 -c50 -d"${WINDOW}s" "http://127.0.0.1:$PORT/" | awk '/requests in/ {print $1}')
      t1=$(cpu_ticks "$worker")
      v=$(us_per_req "$t0" "$t1" "$n")
      case $w in 1) WIN1[$s]="${WIN1[$s]:-} $v" ;; 2) WIN2[$s]="${WIN2[$s]:-} $v" ;; 3) WIN3[$s]="${WIN3[$s]:-} $v" ;; esac
      t0=$t1
    done
    stop_master "$MASTER"
    MASTER=""
    log "round $r, $label: at ready${AT_READY[$s]##* } ms CPU; µs per request by window:${WIN1[$s]##* } ${WIN2[$s]##* } ${WIN3[$s]##* }"
  done
done

{
  echo "# A fresh worker's first seconds under load"
  echo
  echo "SeedApp (Production, Redis running) under corral \`-w 1\`; once the worker is ready, \`wrk -t2 -c50\` for three windows of"
  echo "$WINDOW s in a row. CPU of the worker process (user + system, from /proc) per request served, per window; the settings"
  echo "alternate, a fresh corral each time. The first window's excess over the third is what a reload or recycle costs under load."
  echo
  echo "- command: \`bench/fresh-worker.sh --rounds $ROUNDS --window $WINDOW\`"
  result_facts
  echo
  echo "| worker setting | CPU ms at ready (median) | µs/request, window 1 (median) | per round | window 2 (median) | window 3 (median) | per round |"
  echo "|---|---:|---:|---|---:|---:|---|"
  for s in "${!SETTINGS[@]}"; do
    IFS='|' read -r label _ <<<"${SETTINGS[$s]}"
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(echo "${AT_READY[$s]}" | median)" "$(echo "${WIN1[$s]}" | median)" "${WIN1[$s]# }" \
      "$(echo "${WIN2[$s]}" | median)" "$(echo "${WIN3[$s]}" | median)" "${WIN3[$s]# }"
  done
} | tidy >"$BENCH_DIR/results/fresh-worker.md"
cat "$BENCH_DIR/results/fresh-worker.md"
