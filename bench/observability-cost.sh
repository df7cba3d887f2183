#!/usr/bin/env bash
# What corral's observability costs on the request path: BenchApp `/` under corral -k async -w 2,
# plain, with --statsd-host (a real UDP listener drains the datagrams), with the text access log and
# with --access-log-json (both to a file). Rounds alternate the configurations. Two measures: the
# workers' CPU time per request at a fixed rate (hey -q: steadier on a shared machine than req/s),
# and req/s at saturation (wrk, on the same cores as the server).
#
#   bench/observability-cost.sh [--rounds R] [--duration S]
#
# Writes bench/results/observability-cost.md. About 4 x rounds x (duration + 6 s).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=3 DURATION=10
ARGS_SHOWN="$*"
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    *) echo "usage: $0 [--rounds R] [--duration S]" >&2; exit 2 ;;
  esac
  shift
done
require_tools wrk hey curl python3
RATE_CONNS=20 RATE_PER_CONN=500   # hey -c 20 -q 500: 10,000 req/s

OUT="$BENCH_DIR/out/observability-cost"
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'stop_all_servers' EXIT
log "building corral and BenchApp (Release)"
build_dotnet "$ROOT_DIR/src/Corral"
build_dotnet "$BENCH_DIR/BenchApp"

STATSD_PORT=$(next_port)
start_server statsd-sink "$OUT" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    s.recv(65536)
' "$STATSD_PORT"

declare -A FLAGS=(
  [plain]=""
  [statsd]="--statsd-host 127.0.0.1:$STATSD_PORT"
  [access-log]="--access-logfile $OUT/access.log"
  [access-log-json]="--access-logfile $OUT/access.log --access-log-json"
)
NAMES=(plain statsd access-log access-log-json)
declare -A RPS=() P99=() CPU=()

for ((r = 1; r <= ROUNDS; r++)); do
  for name in "${NAMES[@]}"; do
    port=$(next_port)
    rm -f "$OUT/access.log"
    # shellcheck disable=SC2086
    start_server "$name" "$OUT" dotnet "$CORRAL_DLL_DEFAULT" -k async -w 2 -b "127.0.0.1:$port" ${FLAGS[$name]} "$BENCH_APP_DLL"
    wait_ready "$name" "$port" 60 "$OUT" || { log "$name: ${SERVER_NOTE[$name]}"; exit 1; }
    read -r cpu rps p99 < <(measure_cost "$port" "$OUT/$name.$r" "$DURATION" "$RATE_CONNS" "$RATE_PER_CONN")
    stop_server "$name"
    CPU[$name]+="$cpu "
    RPS[$name]+="$rps "; P99[$name]+="$p99 "
    log "round $r $name: $cpu µs CPU/request at 10k req/s; $rps req/s, p99 $p99 at saturation"
  done
done
rm -f "$OUT/access.log"

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
plain=$(median <<<"${RPS[plain]}")
plain_cpu=$(median <<<"${CPU[plain]}")
{
  echo "# What observability costs on the request path"
  echo
  echo "- command: \`bench/observability-cost.sh $ARGS_SHOWN\`"
  echo "- server: \`corral -k async -w 2 -b 127.0.0.1:PORT FLAGS bench/BenchApp/bin/Release/net10.0/BenchApp.dll\` (\`/\`: Hello, World!)"
  echo "- CPU per request: the workers' user+system CPU time (/proc/PID/stat) during \`hey -z ${DURATION}s -c $RATE_CONNS -q $RATE_PER_CONN\` (10,000 req/s, keep-alive), divided by the requests answered"
  echo "- saturation: \`wrk -t2 -c64 -d${DURATION}s --latency\`; both after a 3 s warm-up; $ROUNDS rounds, each running every configuration once"
  machine_facts | awk -F'\t' '$1 ~ /^(date|nproc|cpu|dotnet|commit|load)$/ {print "- " $1 ": " $2}'
  echo
  echo "| configuration | flags | CPU µs per request (median) | per round | vs plain | req/s at saturation (median) | per round | p99 per round | vs plain |"
  echo "|---|---|---:|---|---:|---:|---|---|---:|"
  for name in "${NAMES[@]}"; do
    m=$(median <<<"${RPS[$name]}")
    flags=$(tidy <<<"${FLAGS[$name]:--}" | sed "s#bench/out/observability-cost/#FILE #; s#FILE access.log#FILE#")
    c=$(median <<<"${CPU[$name]}")
    echo "| $name | \`$flags\` | $c | ${CPU[$name]% } | $(awk -v a="$c" -v b="$plain_cpu" 'BEGIN {printf "%.2fx", a/b}') | $m | ${RPS[$name]% } | ${P99[$name]% } | $(awk -v a="$m" -v b="$plain" 'BEGIN {printf "%.2fx", a/b}') |"
  done
  echo
  echo "The servers, hey and wrk share the same 2 cores of a shared machine (other virtual machines too): both measures vary by 20-40% between identical runs here, so a difference of the medians under ~15% is not a finding; compare the rounds."
} >"$BENCH_DIR/results/observability-cost.md"
log "wrote bench/results/observability-cost.md"
