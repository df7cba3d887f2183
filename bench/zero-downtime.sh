#!/usr/bin/env bash
# Issue #5's measured acceptance: wrk (keep-alive, never retries) against SeedApp's / under corral
# while it reloads, recycles, upgrades and loses a worker; errors and throughput against a quiet run.
#
#   bench/zero-downtime.sh [--duration S] [--workers N]
#
# Every scenario runs twice: with the runtime's defaults and the app as `dotnet build` leaves it, and
# as docs/deployment.md's "Fast worker boots" advises for frequent reloads and recycling (the app
# published ReadyToRun, workers with DOTNET_TieredPGO=0); each is compared with its own baseline.
# Writes bench/results/zero-downtime.md. About 10 x duration + boots (default 30 s: ~6 minutes).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=30
WORKERS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    *) echo "usage: $0 [--duration S] [--workers N]" >&2; exit 2 ;;
  esac
done
for tool in wrk redis-server; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y wrk redis-server" >&2; exit 1; }
done

OUT="$BENCH_DIR/out/zero-downtime"
rm -rf "$OUT" && mkdir -p "$OUT"
log "building corral and SeedApp (Release)"
build_dotnet "$ROOT_DIR/src/Corral"
build_dotnet "$ROOT_DIR/examples/SeedApp"
SEED_DLL="$ROOT_DIR/examples/SeedApp/bin/Release/net10.0/SeedApp.dll"
log "publishing SeedApp ReadyToRun"
dotnet publish "$ROOT_DIR/examples/SeedApp" -c Release -r linux-x64 --self-contained false \
  -p:PublishReadyToRun=true -o "$OUT/seedapp-r2r" >"$OUT/publish.log" 2>&1 || { cat "$OUT/publish.log" >&2; exit 1; }
SEED_R2R_DLL="$OUT/seedapp-r2r/SeedApp.dll"
APP_DLL=$SEED_DLL

REDIS_PORT=$(next_port); NEXT_PORT=$((REDIS_PORT + 1))   # $(...) runs in a subshell: advance here
setsid timeout 3600 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
MASTER=""
cleanup() {
  [ -n "$MASTER" ] && pkill -KILL -P "$MASTER" 2>/dev/null; [ -n "$MASTER" ] && kill -KILL "$MASTER" 2>/dev/null
  [ -f "$OUT/corral.pid.2" ] && { NEW=$(cat "$OUT/corral.pid.2"); pkill -KILL -P "$NEW"; kill -KILL "$NEW"; } 2>/dev/null
  [ -f "$OUT/corral.pid" ] && { P=$(cat "$OUT/corral.pid"); pkill -KILL -P "$P"; kill -KILL "$P"; } 2>/dev/null
  kill "$REDIS_PID" 2>/dev/null || true
}
trap cleanup EXIT

# start_corral NAME EXTRA_ARGS...: sets MASTER and PORT, waits until / answers.
start_corral() {
  local name=$1; shift
  PORT=$(next_port); NEXT_PORT=$((PORT + 1))
  rm -f "$OUT/corral.pid" "$OUT/corral.pid.2"
  setsid timeout 900 dotnet "$CORRAL_DLL_DEFAULT" -w "$WORKERS" -b "127.0.0.1:$PORT" -p "$OUT/corral.pid" \
    -e ASPNETCORE_ENVIRONMENT=Production -e Redis__Host=127.0.0.1 -e "Redis__Port=$REDIS_PORT" \
    "$@" "$APP_DLL" >"$OUT/$name.corral.log" 2>&1 </dev/null &
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && break
    sleep 0.2
  done
  MASTER=$(cat "$OUT/corral.pid")
  sleep 2 # every worker up, JIT warm
  curl -fs -o /dev/null "http://127.0.0.1:$PORT/"
}

# Stops every master of the scenario: after a USR2 there are two (corral.pid and corral.pid.2, or a
# new master that already took corral.pid over).
stop_corral() {
  local pids="$MASTER" pid
  for f in "$OUT/corral.pid" "$OUT/corral.pid.2"; do [ -f "$f" ] && pids="$pids $(cat "$f")"; done
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $pids; do
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done
  for f in "$OUT/corral.pid" "$OUT/corral.pid.2"; do   # a new master that took over meanwhile
    [ -f "$f" ] && { pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null; for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done; }
  done
  MASTER=""
}

# tree_cpu MASTER: CPU ticks of the master, its exited (reaped) workers and its live workers.
tree_cpu() {
  local t w
  t=$(awk '{print $14+$15+$16+$17}' "/proc/$1/stat" 2>/dev/null || echo 0)
  for w in $(pgrep -P "$1"); do t=$((t + $(awk '{print $14+$15}' "/proc/$w/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}

# run NAME ACTION: wrk for DURATION while ACTION runs in the background.
declare -a ROWS=()
run() {
  local name=$1 action=$2; shift 2
  start_corral "$name" "$@"
  log "$name: wrk -t2 -c50 -d${DURATION}s --latency"
  ( eval "$action" ) >"$OUT/$name.action.log" 2>&1 &
  local act=$! cpu0 cpu1 boots0
  cpu0=$(tree_cpu "$MASTER"); boots0=$(grep -c "Booting worker" "$OUT/$name.corral.log" || true)
  wrk -t2 -c50 -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/" >"$OUT/$name.wrk" 2>&1
  cpu1=$(tree_cpu "$MASTER")
  kill "$act" 2>/dev/null || true; wait "$act" 2>/dev/null || true
  stop_corral
  local reqs rps errors non2xx p99
  reqs=$(awk '/requests in/ {print $1}' "$OUT/$name.wrk")
  rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/$name.wrk")
  p99=$(awk '$1=="99%" {print $2}' "$OUT/$name.wrk")
  errors=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' "$OUT/$name.wrk"); errors=${errors:-0}
  non2xx=$(awk '/Non-2xx/ {print $5}' "$OUT/$name.wrk"); non2xx=${non2xx:-0}
  local events
  events=$(grep -cE "Hang up: Master|Autorestarting worker|Upgrading:|was sent SIGKILL" "$OUT/$name.corral.log" || true)
  # Worker boots during the run and the CPU the whole tree used (a USR2 scenario's new master is
  # not in the old one's tree: its CPU is left out there).
  local boots cpu
  boots=$(( $(grep -c "Booting worker" "$OUT/$name.corral.log" || true) - boots0 ))
  cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b-a)/hz}')
  [[ $name == usr2* ]] && cpu=-
  ROWS+=("$name|$*|$reqs|$rps|$p99|$errors|$non2xx|$events|$boots|$cpu")
  log "$name: $rps req/s, socket errors $errors, non-2xx $non2xx, events $events"
}

# scenarios PROFILE_SUFFIX EXTRA_FLAGS...
scenarios() {
  local sfx=$1; shift
  run "baseline$sfx" "true" "$@"
  run "hup-every-3s$sfx" 'sleep 2; while sleep 3; do kill -HUP $(cat '"$OUT"'/corral.pid); done' "$@"
  run "max-requests$sfx" "true" --max-requests 20000 --max-requests-jitter 2000 "$@"
}
scenarios ""
# USR2 at 1/6 of the run, WINCH to the old master at 1/2, TERM to it at 2/3.
STEP=$(awk -v d="$DURATION" 'BEGIN {printf "%.1f", d/6}')
run usr2-upgrade 'sleep '"$STEP"'; OLD=$(cat '"$OUT"'/corral.pid); kill -USR2 $OLD; sleep '"$STEP"'; sleep '"$STEP"'; kill -WINCH $OLD; sleep '"$STEP"'; kill -TERM $OLD'
run kill-9-worker 'sleep '"$STEP"'; kill -9 $(pgrep -P $(cat '"$OUT"'/corral.pid) | head -1)'
run baseline-again "true"
APP_DLL=$SEED_R2R_DLL
scenarios "-fast" -e DOTNET_TieredPGO=0
run baseline-fast-again "true" -e DOTNET_TieredPGO=0

base=$(printf '%s\n' "${ROWS[@]}" | awk -F'|' '$1 ~ /^baseline/ && $1 !~ /-fast/ {s+=$4; n++} END {print s/n}')
# CPU seconds per request of each profile's quiet runs: what a run's boots cost beyond that.
cpr=$(printf '%s\n' "${ROWS[@]}" | awk -F'|' '$1 ~ /^baseline/ && $1 !~ /-fast/ {c+=$10; r+=$3} END {print c/r}')
cpr_fast=$(printf '%s\n' "${ROWS[@]}" | awk -F'|' '$1 ~ /^baseline-fast/ {c+=$10; r+=$3} END {print c/r}')
base_fast=$(printf '%s\n' "${ROWS[@]}" | awk -F'|' '$1 ~ /^baseline-fast/ {s+=$4; n++} END {print s/n}')
{
  echo "# Zero downtime under load (issue #5)"
  echo
  echo "wrk (keep-alive connections, no retries) against SeedApp's \`/\` under corral \`-w $WORKERS\` (async class), Production, Redis running."
  echo "Each scenario is a fresh corral; throughput is compared with the mean of the two quiet baselines; the \`-fast\` rows"
  echo "(SeedApp published ReadyToRun, workers with \`DOTNET_TieredPGO=0\`: docs/deployment.md, \"Fast worker boots\") with \`baseline-fast\`."
  echo
  echo "- command: \`bench/zero-downtime.sh --duration $DURATION --workers $WORKERS\`"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average at the end of the run (wrk and the servers included): $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- .NET $(dotnet --version), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
  echo
  echo "| scenario | extra flags | requests | req/s | vs baseline | p99 | socket errors | non-2xx | reloads/recycles/upgrades/kills seen | worker boots | CPU s (all corral processes) | CPU s per boot beyond the baseline's per-request cost |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r name flags reqs rps p99 errors non2xx events boots cpu <<<"$row"
    b=$base; c=$cpr; [[ $name == *-fast* ]] && { b=$base_fast; c=$cpr_fast; }
    per_boot=$(awk -v cpu="$cpu" -v r="$reqs" -v c="$c" -v n="$boots" 'BEGIN {if (cpu == "-" || n <= 0) print "-"; else printf "%.2f", (cpu - r*c)/n}')
    ratio=$(awk -v r="$rps" -v b="$b" 'BEGIN {printf "%.0f%%", 100*r/b}')
    echo "| $name | ${flags:--} | $reqs | $rps | $ratio | $p99 | $errors | $non2xx | $events | $boots | $cpu | $per_boot |"
  done
  echo
  echo "Targets (#5): 0 socket errors and 0 non-2xx in every scenario except kill-9 (only the requests in flight on the killed worker may fail);"
  echo "HUP every 3 s and max-requests recycling at >= 90% of the baseline's throughput."
} | tidy >"$BENCH_DIR/results/zero-downtime.md"
cat "$BENCH_DIR/results/zero-downtime.md"
