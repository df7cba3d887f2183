#!/usr/bin/env bash
# What one new worker costs before it serves anything: the CPU (user + system, from /proc) a worker
# has used when it reports ready, under corral -w 1, for four builds of an app. Then its steady CPU
# per request (wrk -t2 -c50: 3 s to warm up, 3 s measured), and from both, how many requests a
# worker must serve for its boot to be at most 10% of its work: 9 x boot / per-request. That is a
# floor for issue #5's recycling target (the boot only; the first seconds' slower code add to it:
# bench/results/fresh-worker.md).
#
#   bench/boot-cost.sh [--rounds R]
#
# Builds, in alternation, R rounds (default 5): bench/BenchApp (one endpoint), SeedApp as
# `dotnet build` leaves it, SeedApp published ReadyToRun, SeedApp published as Native AOT. SeedApp
# runs in Production with a throwaway Redis. Writes bench/results/boot-cost.md. About 10 s per round
# and build, plus the publishing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R]" >&2; exit 2 ;;
  esac
done
require_count --rounds "$ROUNDS"
require_tools wrk curl redis-server

OUT="$BENCH_DIR/out/boot-cost"
rm -rf "$OUT" && mkdir -p "$OUT"
seedapp_with_redis "$OUT" 3600
build_dotnet "$BENCH_DIR/BenchApp"
log "publishing SeedApp ReadyToRun"
dotnet publish "$ROOT_DIR/examples/SeedApp" -c Release -r linux-x64 --self-contained false \
  -p:PublishReadyToRun=true -o "$OUT/seedapp-r2r" >"$OUT/publish-r2r.log" 2>&1 || { cat "$OUT/publish-r2r.log" >&2; exit 1; }
log "publishing SeedApp as Native AOT"
dotnet publish "$ROOT_DIR/examples/SeedApp" -c Release -r linux-x64 -p:PublishAot=true \
  -o "$OUT/seedapp-aot" >"$OUT/publish-aot.log" 2>&1 || { cat "$OUT/publish-aot.log" >&2; exit 1; }

BUILDS=("BenchApp (one endpoint), dotnet build|$BENCH_APP_DLL" "SeedApp, dotnet build|$SEED_DLL"
  "SeedApp, published ReadyToRun|$OUT/seedapp-r2r/SeedApp.dll" "SeedApp, published Native AOT|$OUT/seedapp-aot/SeedApp")
declare -A READY PER_REQ

hz=$(getconf CLK_TCK)

for r in $(seq 1 "$ROUNDS"); do
  for b in "${!BUILDS[@]}"; do
    IFS='|' read -r label app <<<"${BUILDS[$b]}"
    seedapp_corral "$OUT/$b-r$r.log" 600 "$app" || { log "$label: no worker ready (see $OUT/$b-r$r.log)"; exit 1; }
    worker=$(pgrep -P "$MASTER" | head -1)
    ms=$(( $(cpu_ticks "$worker") * 1000 / hz ))
    READY[$b]="${READY[$b]:-} $ms"
    wrk -t2 -c50 -d3s "http://127.0.0.1:$PORT/" >/dev/null
    t0=$(cpu_ticks "$worker")
    n=$(wrk -t2 -c50 -d3s "http://127.0.0.1:$PORT/" | awk '/requests in/ {print $1}')
    t1=$(cpu_ticks "$worker")
    us=$(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$hz" 'BEGIN {printf "%.1f", (b - a) * 1e6 / hz / n}')
    PER_REQ[$b]="${PER_REQ[$b]:-} $us"
    stop_master "$MASTER"
    MASTER=""
    log "round $r, $label: $ms ms CPU at ready, $us µs per request after warm-up"
  done
done

{
  echo "# What a new worker costs before it serves"
  echo
  echo "CPU (user + system, from /proc) of a corral \`-w 1\` worker when it reports ready, per build of the app; then its"
  echo "steady CPU per request (\`wrk -t2 -c50\`, 3 s warm-up, 3 s measured). A worker's boot is at most 10% of its work only"
  echo "if it then serves 9 x boot / per-request requests: a floor for \`--max-requests\` (the first seconds' slower code,"
  echo "bench/results/fresh-worker.md, come on top). Builds alternate, a fresh corral each time."
  echo
  echo "- command: \`bench/boot-cost.sh --rounds $ROUNDS\`"
  result_facts
  echo
  echo "| build | CPU ms at ready (median) | per round | µs per request, warm (median) | requests per worker for boot <= 10% |"
  echo "|---|---:|---|---:|---:|"
  for b in "${!BUILDS[@]}"; do
    IFS='|' read -r label _ <<<"${BUILDS[$b]}"
    ready=$(echo "${READY[$b]}" | median); us=$(echo "${PER_REQ[$b]}" | median)
    printf '| %s | %s | %s | %s | %s |\n' "$label" "$ready" "${READY[$b]# }" "$us" \
      "$(awk -v b="$ready" -v u="$us" 'BEGIN {printf "%.0f", 9 * b * 1000 / u}')"
  done
} | tidy >"$BENCH_DIR/results/boot-cost.md"
cat "$BENCH_DIR/results/boot-cost.md"
