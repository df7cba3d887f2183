#!/usr/bin/env bash
# Issue #5's measured acceptance: wrk (keep-alive, never retries) against SeedApp's / under corral
# while it reloads, recycles, upgrades and loses a worker; errors and throughput against a quiet run.
#
#   bench/zero-downtime.sh [--duration S] [--workers N]
#   bench/zero-downtime.sh --rounds R [--profiles default,kernel,warm,fast,aot,jitprofile,nice,published] [--duration S] [--workers N] [--hup-every S]
#
# The reload and recycling scenarios run three times: with the runtime's defaults and the app as
# `dotnet build` leaves it; as docs/deployment.md's "Fast worker boots" advises for frequent reloads
# and recycling (the app published ReadyToRun, workers with DOTNET_TieredPGO=0 and
# DOTNET_TC_CallCountingDelayMs=0); and with the app
# published as Native AOT (docs/deployment.md, "Native AOT apps"). Each profile is compared with its
# own baselines. Writes bench/results/zero-downtime.md. About 14 x duration + boots and publishing
# (default 30 s: ~10 minutes).
#
# With --rounds R, only the quiet, HUP and recycling runs, for the --profiles given (kernel: the
# default app with --accept-policy kernel, Gunicorn's way of sharing connections; warm: the default
# app with --warmup-requests, WARMUP_REQUESTS of them, 2000 unless set; jitprofile: the default app with
# --jit-profile on; nice: the default app with --boot-nice 10 (docs/capacity-B.md);
# published: the app published ReadyToRun and nothing else), in alternation
# R times over (--hup-every S: a HUP every S seconds instead of 3, e.g. 15 for issue #19's realistic churn); each round's ratios are against that round's quiet run, and the report gives each
# one and their median (this machine's noise is 10-20% between identical runs). Writes
# bench/results/zero-downtime-rounds-PROFILES.md (e.g. zero-downtime-rounds-default-aot.md; with a
# --workers other than 2, zero-downtime-rounds-default-aot-w1.md; with --hup-every 15, ...-hup15.md).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=30
WORKERS=2
ROUNDS=0
HUP_EVERY=3
PROFILES=default,fast,aot
# docs/deployment.md, "Fast worker boots": no instrumented tier, and hot methods optimised without waiting.
FAST_ENV=(-e DOTNET_TieredPGO=0 -e DOTNET_TC_CallCountingDelayMs=0)
# docs/deployment.md, "Warm-up": each new worker serves these in memory before it reports ready.
WARM_FLAGS=(--warmup-requests "${WARMUP_REQUESTS:-2000}")
# docs/deployment.md, "How async workers share connections": every idle worker accepts.
KERNEL_FLAGS=(--accept-policy kernel)
# docs/capacity-B.md: the JIT profile on; booting workers at a lower priority (nice).
JITPROFILE_FLAGS=(--jit-profile on)
NICE_FLAGS=(--boot-nice 10)
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --profiles) PROFILES=$2; shift 2 ;;
    --hup-every) HUP_EVERY=$2; shift 2 ;;
    *) echo "usage: $0 [--duration S] [--workers N] [--rounds R [--profiles default,kernel,warm,fast,aot,jitprofile,nice,published] [--hup-every S]]" >&2; exit 2 ;;
  esac
done
[[ $ROUNDS =~ ^[0-9]+$ ]] || { echo "--rounds: a whole number, not '$ROUNDS'" >&2; exit 2; }
[[ $HUP_EVERY =~ ^[1-9][0-9]*$ ]] || { echo "--hup-every: a whole number of seconds, not '$HUP_EVERY'" >&2; exit 2; }
for p in ${PROFILES//,/ }; do
  [[ $p =~ ^(default|kernel|warm|fast|aot|jitprofile|nice|published)$ ]] || { echo "--profiles: default, kernel, warm, fast, aot, jitprofile, nice or published, not '$p'" >&2; exit 2; }
done
wants() { [[ ",$PROFILES," == *",$1,"* || $ROUNDS -eq 0 ]]; }
for tool in wrk redis-server; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y wrk redis-server" >&2; exit 1; }
done

OUT="$BENCH_DIR/out/zero-downtime"
rm -rf "$OUT" && mkdir -p "$OUT"
log "building corral and SeedApp (Release)"
build_dotnet "$ROOT_DIR/src/Corral"
build_dotnet "$ROOT_DIR/examples/SeedApp"
SEED_DLL="$ROOT_DIR/examples/SeedApp/bin/Release/net10.0/SeedApp.dll"
if wants fast || wants published; then
  log "publishing SeedApp ReadyToRun"
  dotnet publish "$ROOT_DIR/examples/SeedApp" -c Release -r linux-x64 --self-contained false \
    -p:PublishReadyToRun=true -o "$OUT/seedapp-r2r" >"$OUT/publish.log" 2>&1 || { cat "$OUT/publish.log" >&2; exit 1; }
fi
SEED_R2R_DLL="$OUT/seedapp-r2r/SeedApp.dll"
if wants aot; then
  log "publishing SeedApp as Native AOT"
  dotnet publish "$ROOT_DIR/examples/SeedApp" -c Release -r linux-x64 -p:PublishAot=true \
    -o "$OUT/seedapp-aot" >"$OUT/publish-aot.log" 2>&1 || { cat "$OUT/publish-aot.log" >&2; exit 1; }
fi
SEED_AOT_EXE="$OUT/seedapp-aot/SeedApp"
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
  t=$(stat_after_comm "$1" 2>/dev/null | awk '{print $12+$13+$14+$15} END {if (NR == 0) print 0}')
  for w in $(pgrep -P "$1"); do t=$((t + $(stat_after_comm "$w" 2>/dev/null | awk '{print $12+$13} END {if (NR == 0) print 0}'))); done
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
  errors=$(awk -F'[ ,]+' '/Socket errors/ {print $5+$7+$9+$11}' "$OUT/$name.wrk"); errors=${errors:-0}
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

# run_facts: the report's date, machine and versions lines.
run_facts() {
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average at the end of the run (wrk and the servers included): $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- .NET $(dotnet --version), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
}

# scenarios PROFILE_SUFFIX EXTRA_FLAGS...
scenarios() {
  local sfx=$1; shift
  run "baseline$sfx" "true" "$@"
  run "hup-every-${HUP_EVERY}s$sfx" 'sleep 2; while sleep '"$HUP_EVERY"'; do kill -HUP $(cat '"$OUT"'/corral.pid); done' "$@"
  run "max-requests$sfx" "true" --max-requests 20000 --max-requests-jitter 2000 "$@"
}
if [ "$ROUNDS" -gt 0 ]; then
  ROUNDS_MD="$BENCH_DIR/results/zero-downtime-rounds-${PROFILES//,/-}$([ "$WORKERS" = 2 ] || echo "-w$WORKERS")$([ "$HUP_EVERY" = 3 ] || echo "-hup$HUP_EVERY").md"
  for r in $(seq 1 "$ROUNDS"); do
    for p in ${PROFILES//,/ }; do
      case $p in
        default) APP_DLL=$SEED_DLL; scenarios "-r$r" ;;
        kernel) APP_DLL=$SEED_DLL; scenarios "-kernel-r$r" "${KERNEL_FLAGS[@]}" ;;
        warm) APP_DLL=$SEED_DLL; scenarios "-warm-r$r" "${WARM_FLAGS[@]}" ;;
        fast) APP_DLL=$SEED_R2R_DLL; scenarios "-fast-r$r" "${FAST_ENV[@]}" ;;
        aot) APP_DLL=$SEED_AOT_EXE; scenarios "-aot-r$r" ;;
        jitprofile) APP_DLL=$SEED_DLL; scenarios "-jitprofile-r$r" "${JITPROFILE_FLAGS[@]}" ;;
        nice) APP_DLL=$SEED_DLL; scenarios "-nice-r$r" "${NICE_FLAGS[@]}" ;;
        published) APP_DLL=$SEED_R2R_DLL; scenarios "-published-r$r" ;;
      esac
    done
  done
  {
    echo "# Zero downtime under load, in rounds (issue #5)"
    echo
    echo "wrk (keep-alive connections, no retries) against SeedApp's \`/\` under corral \`-w $WORKERS\` (async class), Production, Redis running."
    echo "Each run is a fresh corral; each round runs every profile's quiet, HUP-every-$HUP_EVERY-s and \`--max-requests 20000 --max-requests-jitter 2000\`"
    echo "runs one after the other, and each ratio is against the same round's quiet run of the same profile. Profiles: \`default\` (the app as"
    echo "\`dotnet build\` leaves it), \`kernel\` (the same app, \`${KERNEL_FLAGS[*]}\`), \`warm\` (the same app, \`${WARM_FLAGS[*]}\`), \`fast\` (published ReadyToRun, workers with \`DOTNET_TieredPGO=0\` and \`DOTNET_TC_CallCountingDelayMs=0\`), \`aot\` (published as Native AOT:"
    echo "docs/deployment.md, \"Native AOT apps\"), \`jitprofile\` (the default app, \`${JITPROFILE_FLAGS[*]}\`), \`nice\` (the default app, \`${NICE_FLAGS[*]}\`), \`published\` (published ReadyToRun, nothing else)."
    echo "CPU s per boot: the run's CPU (master and every worker) less its requests at the round's quiet CPU per request, over the worker boots."
    echo
    echo "- command: \`bench/zero-downtime.sh --rounds $ROUNDS --profiles $PROFILES --duration $DURATION --workers $WORKERS$([ "$HUP_EVERY" = 3 ] || echo " --hup-every $HUP_EVERY")\`"
    run_facts
    echo
    echo "| profile | scenario | req/s per round | vs the round's quiet run | median | corral's CPU µs per request, per round | median | CPU s per boot, per round | median | socket errors | non-2xx | reloads/recycles seen | worker boots |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for p in ${PROFILES//,/ }; do
      sfx=""; [ "$p" != default ] && sfx="-$p"
      for sc in baseline "hup-every-${HUP_EVERY}s" max-requests; do
        printf '%s\n' "${ROWS[@]}" | awk -F'|' -v p="$p" -v sc="$sc$sfx-r" -v base="baseline$sfx-r" '
          index($1, base) == 1 { b[substr($1, length(base) + 1)] = $4; cpr[substr($1, length(base) + 1)] = $10 / $3 }
          index($1, sc) == 1 { n++; r[n] = substr($1, length(sc) + 1); rps[n] = $4; us[n] = 1e6 * $10 / $3; e += $6; x += $7; ev += $8; bo += $9; cpu[n] = $10; req[n] = $3; nb[n] = $9 }
          function median(a, n,   i, j, t) {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
          }
          END {
            for (i = 1; i <= n; i++) {
              ratio[i] = 100 * rps[i] / b[r[i]]; sep = i > 1 ? ", " : ""
              list = list sep sprintf("%.0f", rps[i]); rl = rl sep sprintf("%.0f%%", ratio[i]); ul = ul sep sprintf("%.1f", us[i])
              if (nb[i] > 0) { m++; pb[m] = (cpu[i] - req[i] * cpr[r[i]]) / nb[i]; bl = bl (m > 1 ? ", " : "") sprintf("%.2f", pb[m]) }
            }
            printf "| %s | %s | %s | %s | %.0f%% | %s | %.1f | %s | %s | %d | %d | %d | %d |\n", p, substr(sc, 1, length(sc) - length(p == "default" ? "" : "-" p) - 2),
              list, rl, median(ratio, n), ul, median(us, n), m ? bl : "-", m ? sprintf("%.2f", median(pb, m)) : "-", e, x, ev, bo
          }'
      done
    done
    echo
    echo "Targets (#5): 0 socket errors and 0 non-2xx; HUP every 3 s and max-requests recycling at >= 90% of the quiet throughput (#19, HUP every 15 s: >= 95%)."
    echo "CPU per request counts the master and every worker, the ones that exited during the run included: unlike req/s, it does not"
    echo "depend on what else the machine runs, so it shows what reloads and recycles cost even when the rounds' req/s scatter."
  } | tidy >"$ROUNDS_MD"
  cat "$ROUNDS_MD"
  exit 0
fi

scenarios ""
# USR2 at 1/6 of the run, WINCH to the old master at 1/2, TERM to it at 2/3.
STEP=$(awk -v d="$DURATION" 'BEGIN {printf "%.1f", d/6}')
run usr2-upgrade 'sleep '"$STEP"'; OLD=$(cat '"$OUT"'/corral.pid); kill -USR2 $OLD; sleep '"$STEP"'; sleep '"$STEP"'; kill -WINCH $OLD; sleep '"$STEP"'; kill -TERM $OLD'
run kill-9-worker 'sleep '"$STEP"'; kill -9 $(pgrep -P $(cat '"$OUT"'/corral.pid) | head -1)'
run baseline-again "true"
APP_DLL=$SEED_R2R_DLL
scenarios "-fast" "${FAST_ENV[@]}"
run baseline-fast-again "true" "${FAST_ENV[@]}"
APP_DLL=$SEED_AOT_EXE
scenarios "-aot"
run baseline-aot-again "true"

# profile NAME: the suffix of a scenario's profile ("", -fast or -aot).
profile() { case "$1" in *-fast*) echo -fast ;; *-aot*) echo -aot ;; *) echo "" ;; esac; }
# Per profile: the mean req/s of its quiet baselines, and their CPU seconds per request (what a
# run's boots cost beyond that).
declare -A BASE CPR
for p in "" -fast -aot; do
  quiet=$(for row in "${ROWS[@]}"; do n=${row%%|*}; if [[ $n == baseline* && "$(profile "$n")" == "$p" ]]; then echo "$row"; fi; done)
  BASE[x$p]=$(awk -F'|' '{s+=$4; n++} END {print s/n}' <<<"$quiet")
  CPR[x$p]=$(awk -F'|' '{c+=$10; r+=$3} END {print c/r}' <<<"$quiet")
done
{
  echo "# Zero downtime under load (issue #5)"
  echo
  echo "wrk (keep-alive connections, no retries) against SeedApp's \`/\` under corral \`-w $WORKERS\` (async class), Production, Redis running."
  echo "Each scenario is a fresh corral; throughput is compared with the mean of its profile's two quiet baselines: the \`-fast\` rows"
  echo "(SeedApp published ReadyToRun, workers with \`DOTNET_TieredPGO=0\` and \`DOTNET_TC_CallCountingDelayMs=0\`: docs/deployment.md, \"Fast worker boots\") with \`baseline-fast\`,"
  echo "the \`-aot\` rows (SeedApp published as Native AOT: docs/deployment.md, \"Native AOT apps\") with \`baseline-aot\`."
  echo "Quiet baselines side by side: default $(printf '%.0f' "${BASE[x]}") req/s, fast $(printf '%.0f' "${BASE[x-fast]}") req/s, Native AOT $(printf '%.0f' "${BASE[x-aot]}") req/s."
  echo
  echo "- command: \`bench/zero-downtime.sh --duration $DURATION --workers $WORKERS$([ "$HUP_EVERY" = 3 ] || echo " --hup-every $HUP_EVERY")\`"
  run_facts
  echo
  echo "| scenario | extra flags | requests | req/s | vs baseline | p99 | socket errors | non-2xx | reloads/recycles/upgrades/kills seen | worker boots | CPU s (all corral processes) | CPU s per boot beyond the baseline's per-request cost |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r name flags reqs rps p99 errors non2xx events boots cpu <<<"$row"
    p=$(profile "$name"); b=${BASE[x$p]}; c=${CPR[x$p]}
    per_boot=$(awk -v cpu="$cpu" -v r="$reqs" -v c="$c" -v n="$boots" 'BEGIN {if (cpu == "-" || n <= 0) print "-"; else printf "%.2f", (cpu - r*c)/n}')
    ratio=$(awk -v r="$rps" -v b="$b" 'BEGIN {printf "%.0f%%", 100*r/b}')
    echo "| $name | ${flags:--} | $reqs | $rps | $ratio | $p99 | $errors | $non2xx | $events | $boots | $cpu | $per_boot |"
  done
  echo
  echo "Targets (#5): 0 socket errors and 0 non-2xx in every scenario except kill-9 (only the requests in flight on the killed worker may fail);"
  echo "HUP every 3 s and max-requests recycling at >= 90% of the baseline's throughput."
} | tidy >"$BENCH_DIR/results/zero-downtime.md"
cat "$BENCH_DIR/results/zero-downtime.md"
