# Shared by the bench scripts: building, starting and stopping servers, readiness, machine facts. Every server runs in its own session (setsid) under `timeout`, and its process
# group is killed on exit, so no run leaves a server behind. Source it; it defines functions only.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$BENCH_DIR")
BENCH_APP_DLL="$BENCH_DIR/BenchApp/bin/Release/net10.0/BenchApp.dll"
SEED_CLIENT_DLL="$BENCH_DIR/SeedClient/bin/Release/net10.0/SeedClient.dll"
CORRAL_DLL_DEFAULT="$ROOT_DIR/src/Corral/bin/Release/net10.0/corral.dll"

# pgid of every server started, and the id each one was started as.
declare -A SERVER_PGID=()
declare -A SERVER_PORT=()
declare -A SERVER_NOTE=()   # why a server is not available, when it is not
declare -A SERVER_CMD=()    # the command as shown in the results (no machine paths)
SERVER_MAX_SECONDS=${SERVER_MAX_SECONDS:-1800}
NEXT_PORT=${BENCH_BASE_PORT:-18100}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# A machine path made relative to the repository, for anything that goes into results.
tidy() { sed -e "s#$ROOT_DIR/##g" -e "s#$ROOT_DIR#.#g" -e "s#$HOME#~#g"; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

next_port() {
  while ! port_free "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
  echo "$NEXT_PORT"
  NEXT_PORT=$((NEXT_PORT + 1))
}

# build_dotnet PROJECT_DIR: Release build, quiet; prints the first error on failure.
build_dotnet() {
  local out
  if out=$(timeout 600 dotnet build "$1" -c Release -nologo -v quiet 2>&1); then
    return 0
  fi
  printf '%s\n' "$out" | grep -m1 -E 'error|Error' | tidy | sed 's/ \[[^]]*\]\{0,1\}$//' | cut -c1-200 >&2
  return 1
}

# start_server ID LOGDIR CMD...: runs CMD in a new session under timeout; records its pgid.
start_server() {
  local id=$1 logdir=$2
  shift 2
  setsid timeout -k 10 "$SERVER_MAX_SECONDS" "$@" >"$logdir/$id.log" 2>&1 </dev/null &
  SERVER_PGID[$id]=$!
}

# wait_ready ID PORT TIMEOUT_S: polls / until it answers 200; 1 (and SERVER_NOTE) otherwise.
wait_ready() {
  local id=$1 port=$2 limit=$3 logdir=$4 pid=${SERVER_PGID[$1]} start=$SECONDS code
  while ((SECONDS - start < limit)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      code=0
      wait "$pid" 2>/dev/null || code=$?
      SERVER_NOTE[$id]="exited with code $code at start: $(grep -v '^\s*$' "$logdir/$id.log" | tail -n1 | tidy | cut -c1-160)"
      unset 'SERVER_PGID[$id]'
      return 1
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/" || true) == 200 ]]; then
      return 0
    fi
    sleep 0.3
  done
  SERVER_NOTE[$id]="not ready after ${limit} s: $(grep -v '^\s*$' "$logdir/$id.log" | tail -n1 | tidy | cut -c1-160)"
  stop_server "$id"
  return 1
}

# stop_server ID: TERM to the whole process group, KILL after 10 s.
stop_server() {
  local id=$1 pgid=${SERVER_PGID[$1]:-} i
  [[ -n $pgid ]] || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 -- "-$pgid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  wait "$pgid" 2>/dev/null || true
  unset 'SERVER_PGID[$id]'
}

# start_bench_server ID KIND ARGS LOGDIR: starts one of BenchApp's servers on the next free port (SERVER_PORT),
# not waiting (wait_ready does): KIND corral (corral ARGS on BenchApp: CORRAL_DLL, or, when resolve_corral
# left a CORRAL_NOTE, 1 with that SERVER_NOTE), kestrel (BenchApp alone) or gunicorn (gunicorn ARGS on
# bench/flask's app). Records the command as the results show it (SERVER_CMD).
start_bench_server() {
  local id=$1 kind=$2 sargs=$3 logdir=$4 port
  local -a args
  port=$(next_port)
  SERVER_PORT[$id]=$port
  read -r -a args <<<"$sargs"
  case $kind in
    corral)
      if [[ -n ${CORRAL_NOTE:-} ]]; then SERVER_NOTE[$id]=$CORRAL_NOTE; return 1; fi
      SERVER_CMD[$id]="dotnet $(tidy <<<"$CORRAL_DLL") $sargs -b 127.0.0.1:$port bench/BenchApp/bin/Release/net10.0/BenchApp.dll"
      start_server "$id" "$logdir" dotnet "$CORRAL_DLL" "${args[@]}" -b "127.0.0.1:$port" "$BENCH_APP_DLL" ;;
    kestrel)
      SERVER_CMD[$id]="dotnet bench/BenchApp/bin/Release/net10.0/BenchApp.dll --urls http://127.0.0.1:$port"
      start_server "$id" "$logdir" dotnet "$BENCH_APP_DLL" --urls "http://127.0.0.1:$port" ;;
    gunicorn)
      SERVER_CMD[$id]="gunicorn $sargs -b 127.0.0.1:$port app:app   (in bench/flask)"
      start_server "$id" "$logdir" gunicorn --chdir "$BENCH_DIR/flask" "${args[@]}" -b "127.0.0.1:$port" app:app ;;
  esac
}

stop_all_servers() {
  local id
  for id in "${!SERVER_PGID[@]}"; do stop_server "$id"; done
}

# Facts about the run for the results files, as "key<TAB>value" lines.
machine_facts() {
  printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'nproc\t%s\n' "$(nproc)"
  printf 'cpu\t%s\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  printf 'kernel\t%s\n' "$(uname -sr)"
  printf 'memory\t%s\n' "$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  printf 'dotnet\t%s\n' "$(dotnet --version 2>/dev/null) (runtime $(dotnet --list-runtimes 2>/dev/null | awk '/Microsoft.AspNetCore.App/ {v=$2} END {print v}'))"
  printf 'gunicorn\t%s\n' "$(gunicorn --version 2>/dev/null | sed 's/gunicorn (version \(.*\))/\1/')"
  local py
  py=$(head -1 "$(command -v gunicorn)" | sed 's/^#! *//; s/ .*//')
  printf 'python\t%s\n' "$("$py" --version 2>&1)"
  printf 'flask\t%s\n' "$("$py" -c 'import flask, gevent; print("Flask", flask.__version__, "gevent", gevent.__version__)' 2>&1 | tail -1)"
  printf 'commit\t%s\n' "$(git -C "$ROOT_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  printf 'load\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# median: the median of the numbers on standard input (spaces or newlines between them; the mean of
# the middle two when there is an even count).
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

# stat_after_comm PID: /proc/PID/stat from field 3 (the state) on. The command name (field 2) may hold
# spaces: a worker's is "corral: worker" (-n), so counting fields from the line's start is wrong.
# Fields 14-17 (utime stime cutime cstime) are $12-$15 of this.
stat_after_comm() { sed 's/^.*) //' "/proc/$1/stat"; }

# cpu_ticks PID: user + system clock ticks one process has used (/proc/PID/stat fields 14 and 15).
cpu_ticks() { stat_after_comm "$1" | awk '{print $12 + $13}'; }

# measure_cost PORT FILE_PREFIX SECONDS CONNS RATE_PER_CONN: one round against a corral on PORT (after a
# 3 s wrk warm-up): the workers' CPU µs per request during `hey -z SECONDS -c CONNS -q RATE_PER_CONN`
# (user+system ticks of the master's children, /proc/PID/stat, divided by the 200s answered; "-" if hey
# gave no count), then `wrk -t2 -c64 -dSECONDS` at saturation. Prints "CPU REQ_PER_S P99"; keeps the
# tools' output in FILE_PREFIX.hey and FILE_PREFIX.wrk.
measure_cost() {
  local port=$1 prefix=$2 secs=$3 conns=$4 rate=$5 master t0 t1 n cpu
  wrk -t2 -c64 -d3s "http://127.0.0.1:$port/" >/dev/null
  master=$(pgrep -f -n -- "-b 127.0.0.1:$port ")
  t0=$(workers_cpu "$master")
  hey -z "${secs}s" -c "$conns" -q "$rate" "http://127.0.0.1:$port/" >"$prefix.hey"
  t1=$(workers_cpu "$master")
  n=$(awk '/\[200\]/ {print $2}' "$prefix.hey")
  cpu=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="${n:-0}" 'BEGIN {if (n + 0 > 0) printf "%.1f", t / hz * 1e6 / n; else print "-"}')
  wrk -t2 -c64 -d"${secs}s" --latency "http://127.0.0.1:$port/" >"$prefix.wrk"
  echo "$cpu $(awk '/Requests\/sec/ {printf "%.0f", $2}' "$prefix.wrk") $(awk '$1 == "99%" {print $2}' "$prefix.wrk")"
}

# workers_cpu MASTER: user+system ticks of the master's children (the workers).
workers_cpu() {
  local t=0 w
  for w in $(pgrep -P "$1"); do t=$((t + $(stat_after_comm "$w" 2>/dev/null | awk '{print $12+$13} END {if (NR == 0) print 0}'))); done
  echo "$t"
}

# stop_master PID: TERM a corral master and wait up to 10 s for it to exit.
stop_master() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
}

# result_facts: the date, machine and .NET lines of a results file (run at the end: the load average is the run's).
result_facts() {
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- .NET $(dotnet --version), commit $(git -C "$ROOT_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
}

# require_count FLAG VALUE: exits 2 unless VALUE is a whole number above 0 (a script's --rounds and the like).
require_count() {
  [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "$1: a whole number above 0, not '$2'" >&2; exit 2; }
}

require_tools() {
  local missing=() t
  for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
  if ((${#missing[@]})); then
    log "missing: ${missing[*]} (Debian: apt-get install -y wrk gunicorn python3-flask python3-gevent)"
    exit 2
  fi
}

# resolve_corral: sets CORRAL_DLL (built from src/Corral unless --corral DLL was given) or, when corral
# cannot be used, CORRAL_NOTE with the reason (the server is then reported as not available).
# Reads NO_CORRAL and CORRAL_DLL.
resolve_corral() {
  CORRAL_NOTE=""
  local err
  if ((${NO_CORRAL:-0})); then
    CORRAL_NOTE="left out (--no-corral)"
  elif [[ -n ${CORRAL_DLL:-} ]]; then
    [[ -f $CORRAL_DLL ]] || CORRAL_NOTE="no such file: $CORRAL_DLL"
  else
    log "building src/Corral"
    CORRAL_DLL=$CORRAL_DLL_DEFAULT
    if ! err=$(build_dotnet "$ROOT_DIR/src/Corral" 2>&1); then
      CORRAL_NOTE="build failed: ${err:-see dotnet build src/Corral -c Release}"
    fi
  fi
  [[ -z $CORRAL_NOTE ]] || log "corral: not available ($CORRAL_NOTE)"
}

# build_testapp: builds tests/apps/TestApp (Release) and sets APP_DLL to its dll.
build_testapp() {
  log "building tests/apps/TestApp (Release)"
  build_dotnet "$ROOT_DIR/tests/apps/TestApp"
  APP_DLL="$ROOT_DIR/tests/apps/TestApp/bin/Release/net10.0/TestApp.dll"
}

# seedapp_with_redis OUTDIR LIMIT_S: builds corral and SeedApp (Release), sets SEED_DLL, starts a
# throwaway redis-server (REDIS_PORT, REDIS_PID; no persistence, files in OUTDIR), and on exit kills it
# and MASTER's process tree (the corral a script is running, if any). seedapp_corral starts that corral.
seedapp_with_redis() {
  local out=$1 limit=$2
  SEEDAPP_OUT=$out
  log "building corral and SeedApp (Release)"
  build_dotnet "$ROOT_DIR/src/Corral"
  build_dotnet "$ROOT_DIR/examples/SeedApp"
  SEED_DLL="$ROOT_DIR/examples/SeedApp/bin/Release/net10.0/SeedApp.dll"
  REDIS_PORT=$(next_port); NEXT_PORT=$((REDIS_PORT + 1))
  setsid timeout "$limit" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$out" >"$out/redis.log" 2>&1 &
  REDIS_PID=$!
  MASTER=""
  trap seedapp_cleanup EXIT
}
seedapp_cleanup() {
  [ -n "$MASTER" ] && { pkill -KILL -P "$MASTER"; kill -KILL "$MASTER"; } 2>/dev/null
  kill "$REDIS_PID" 2>/dev/null || true
}

# seedapp_corral LOG LIMIT_S APP [CORRAL_ARGS...]: runs `corral -w 1 --log-level debug CORRAL_ARGS APP` (APP:
# SeedApp or a published build of it) in Production against seedapp_with_redis's Redis, on the next free port,
# in its own session under `timeout LIMIT_S`, output to LOG, pid file corral.pid in seedapp_with_redis's
# OUTDIR; waits about 30 s (1500 polls) for the master's "Worker ready" line. Sets PORT and MASTER (the master itself, not
# timeout's pid: timeout passes a signal on to its whole process group); 1 when no worker is ready.
seedapp_corral() {
  local log=$1 limit=$2 app=$3
  shift 3
  PORT=$(next_port); NEXT_PORT=$((PORT + 1))
  rm -f "$SEEDAPP_OUT/corral.pid"
  setsid timeout "$limit" dotnet "$CORRAL_DLL_DEFAULT" -w 1 -b "127.0.0.1:$PORT" --log-level debug -p "$SEEDAPP_OUT/corral.pid" \
    -e ASPNETCORE_ENVIRONMENT=Production -e Redis__Host=127.0.0.1 -e "Redis__Port=$REDIS_PORT" \
    "$@" "$app" >"$log" 2>&1 </dev/null &
  for _ in $(seq 1 1500); do grep -q "Worker ready" "$log" && break; sleep 0.02; done
  grep -q "Worker ready" "$log" || return 1
  MASTER=$(cat "$SEEDAPP_OUT/corral.pid")
}
