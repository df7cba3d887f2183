#!/usr/bin/env bash
# What a new worker costs, per process, with and without what docs/capacity-B.md describes: the CPU
# (user + system, /proc/PID/stat) of a SeedApp worker booted by a HUP when it reports ready, then the
# CPU it spends on its first REQUESTS requests (hey -n REQUESTS -c 10, the old worker gone) beyond what
# the next REQUESTS cost it (warm): the boot, and the warm-up of its first requests (unoptimised code,
# the JIT recompiling hot paths). Counted in the worker alone, not against the machine's clock.
#
#   bench/cheaper-boots.sh [--rounds R] [--hups H] [--requests N]
#
# Modes, in alternation R times (default 3): SeedApp as `dotnet build` leaves it, without and with
# --jit-profile; SeedApp published ReadyToRun, without and with it; and that with the two variables of
# docs/deployment.md's "Fast worker boots" (DOTNET_TieredPGO=0, DOTNET_TC_CallCountingDelayMs=0) (--boot-nice 0 throughout: the
# priority moves CPU between processes, it does not change a worker's own). Each is a fresh corral -w 1
# (Production, a throwaway Redis) given H HUPs (default 3); the first HUP's worker is not counted: it
# boots while the first worker still serves, before any worker has left a profile. Writes
# bench/results/cheaper-boots.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=3
HUPS=3
REQUESTS=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --hups) HUPS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--hups H] [--requests N]" >&2; exit 2 ;;
  esac
done
require_count --rounds "$ROUNDS"
require_count --hups "$HUPS"
require_count --requests "$REQUESTS"
[ "$HUPS" -ge 2 ] || { echo "--hups: at least 2 (the first HUP's worker is not counted)" >&2; exit 2; }
require_tools hey curl redis-server

OUT="$BENCH_DIR/out/cheaper-boots"
rm -rf "$OUT" && mkdir -p "$OUT"
seedapp_with_redis "$OUT" 3600
log "publishing SeedApp ReadyToRun"
start=$(date +%s.%N)
dotnet publish "$ROOT_DIR/examples/SeedApp" -c Release -r linux-x64 --self-contained false \
  -p:PublishReadyToRun=true -o "$OUT/seedapp-r2r" >"$OUT/publish-r2r.log" 2>&1 || { cat "$OUT/publish-r2r.log" >&2; exit 1; }
R2R_S=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
start=$(date +%s.%N)
dotnet publish "$ROOT_DIR/examples/SeedApp" -c Release -o "$OUT/seedapp-il" >"$OUT/publish-il.log" 2>&1 || { cat "$OUT/publish-il.log" >&2; exit 1; }
IL_S=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')

MODES=("dotnet build, --jit-profile off|$SEED_DLL|--jit-profile off"
  "dotnet build, --jit-profile on|$SEED_DLL|--jit-profile on"
  "published ReadyToRun, --jit-profile off|$OUT/seedapp-r2r/SeedApp.dll|--jit-profile off"
  "published ReadyToRun, --jit-profile on|$OUT/seedapp-r2r/SeedApp.dll|--jit-profile on"
  "published ReadyToRun, --jit-profile on, TieredPGO=0, CallCountingDelayMs=0|$OUT/seedapp-r2r/SeedApp.dll|--jit-profile on -e DOTNET_TieredPGO=0 -e DOTNET_TC_CallCountingDelayMs=0")
declare -A READY FIRST WARM
hz=$(getconf CLK_TCK)

for r in $(seq 1 "$ROUNDS"); do
  for m in "${!MODES[@]}"; do
    IFS='|' read -r label app flags <<<"${MODES[$m]}"
    clog="$OUT/$m-r$r.log"
    # shellcheck disable=SC2086 # the flags are words
    seedapp_corral "$clog" 600 "$app" --boot-nice 0 $flags || { log "$label: no worker ready (see $clog)"; exit 1; }
    for h in $(seq 1 "$HUPS"); do
      old=$(pgrep -P "$MASTER" | head -1)
      kill -HUP "$MASTER"
      for _ in $(seq 1 1500); do [ "$(grep -c "Worker ready" "$clog")" -gt "$h" ] && break; sleep 0.02; done
      new=$(grep "Worker ready" "$clog" | tail -1 | sed 's/.*pid: \([0-9]*\).*/\1/')
      ready=$(cpu_ticks "$new")
      for _ in $(seq 1 500); do kill -0 "$old" 2>/dev/null || break; sleep 0.02; done
      hey -n "$REQUESTS" -c 10 "http://127.0.0.1:$PORT/" >"$OUT/$m-r$r-h$h.hey"
      first=$(( $(cpu_ticks "$new") - ready ))
      hey -n "$REQUESTS" -c 10 "http://127.0.0.1:$PORT/" >"$OUT/$m-r$r-h$h-warm.hey"
      warm=$(( $(cpu_ticks "$new") - ready - first ))
      if [ "$h" -gt 1 ]; then
        READY[$m]="${READY[$m]:-} $((ready * 1000 / hz))"
        FIRST[$m]="${FIRST[$m]:-} $(((first - warm) * 1000 / hz))"
        WARM[$m]="${WARM[$m]:-} $((warm * 1000 / hz))"
      fi
      log "round $r, $label, HUP $h: worker $new, $((ready * 1000 / hz)) ms CPU at ready, $((first * 1000 / hz)) ms for its first $REQUESTS requests, $((warm * 1000 / hz)) ms for the next $REQUESTS"
    done
    stop_master "$MASTER"
    MASTER=""
  done
done

{
  echo "# Cheaper worker boots: CPU of one new worker (issue #19)"
  echo
  echo "A SeedApp worker booted by a HUP under \`corral -w 1 --boot-nice 0\` (Production, Redis): its own CPU (user + system, /proc) when it"
  echo "reports ready, and what it then spends on its first $REQUESTS requests (\`hey -n $REQUESTS -c 10\`, once the old worker has gone) beyond"
  echo "what the next $REQUESTS cost it (its warm-up: negative when the machine's noise outweighs it). Each"
  echo "mode is a fresh corral given $HUPS HUPs; the first HUP's worker is not counted (it boots before any worker has left a JIT profile)."
  echo "Modes alternate, $ROUNDS rounds."
  echo
  echo "- command: \`bench/cheaper-boots.sh --rounds $ROUNDS --hups $HUPS --requests $REQUESTS\`"
  result_facts
  echo "- publishing SeedApp: \`dotnet publish -c Release\` $IL_S s, ReadyToRun (\`-r linux-x64 --self-contained false -p:PublishReadyToRun=true\`) $R2R_S s (restore included, one run each)"
  echo
  echo "| mode | CPU ms at ready (median) | per worker | CPU ms of the first $REQUESTS requests beyond the next $REQUESTS (median) | per worker | CPU ms of $REQUESTS warm requests (median) | boot + warm-up (medians) |"
  echo "|---|---:|---|---:|---|---:|---:|"
  for m in "${!MODES[@]}"; do
    IFS='|' read -r label _ _ <<<"${MODES[$m]}"
    a=$(median <<<"${READY[$m]}"); b=$(median <<<"${FIRST[$m]}")
    echo "| $label | $a | ${READY[$m]# } | $b | ${FIRST[$m]# } | $(median <<<"${WARM[$m]}") | $(awk -v a="$a" -v b="$b" 'BEGIN {print a + b}') |"
  done
} | tidy >"$BENCH_DIR/results/cheaper-boots.md"
cat "$BENCH_DIR/results/cheaper-boots.md"
