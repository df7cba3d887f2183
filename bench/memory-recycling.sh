#!/usr/bin/env bash
# A leaking app under --max-worker-memory for a minute: tests/apps/TestApp's `/leak?kb=KB` keeps KB more
# in a static list at every request (a managed leak), under `corral -w 2 --max-worker-memory LIMIT`, with
# `hey` sending leaking requests at a fixed rate. Every second the script sums the PSS of the master's
# children (/proc/PID/smaps_rollup) and keeps the largest single worker's. Reports: requests and their
# statuses (hey), the memory recycles and ceiling kills the master logged, the largest worker PSS against
# the limit and the ceiling, and the workers' total PSS over time (is the host's memory bounded?).
#
#   bench/memory-recycling.sh [--duration S] [--limit SIZE] [--kb KB] [--rate Q] [--corral DLL]
#
# Writes bench/results/memory-recycling.md. About duration + 30 s.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION=60 LIMIT=100MB KB=256 RATE=20
ARGS_SHOWN="$*"
usage() { echo "usage: $0 [--duration S] [--limit SIZE] [--kb KB] [--rate Q] [--corral DLL]" >&2; exit 2; }
while (($#)); do
  case $1 in
    --duration) DURATION=$2; shift ;;
    --limit) LIMIT=$2; shift ;;
    --kb) KB=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --corral) CORRAL_DLL=$(realpath "$2"); shift ;;
    *) usage ;;
  esac
  shift
done
require_count --duration "$DURATION"
require_count --kb "$KB"
require_count --rate "$RATE"
require_tools hey curl dotnet
OUT="$BENCH_DIR/out/memory-recycling"
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'stop_all_servers' EXIT
resolve_corral
[[ -z $CORRAL_NOTE ]] || exit 1
build_testapp

id=leak
port=$(next_port)
FLAGS="-w 2 --max-worker-memory $LIMIT"
start_server "$id" "$OUT" dotnet "$CORRAL_DLL" -w 2 --max-worker-memory "$LIMIT" -b "127.0.0.1:$port" "$APP_DLL"
wait_ready "$id" "$port" 60 "$OUT" || { log "${SERVER_NOTE[$id]}"; exit 1; }
master=$(pgrep -f -n -- "-b 127.0.0.1:$port")

pss_of() { awk '/^Pss:/ {print $2 * 1024; found = 1} END {if (!found) print 0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
# sample: every second, "SECOND TOTAL_PSS LARGEST_PSS" of the master's children
(
  for ((s = 1; s <= DURATION; s++)); do
    total=0 largest=0
    for w in $(pgrep -P "$master"); do
      p=$(pss_of "$w")
      total=$((total + p))
      ((p > largest)) && largest=$p
    done
    echo "$s $total $largest"
    sleep 1
  done
) >"$OUT/pss" &
sampler=$!
hey -z "${DURATION}s" -c 4 -q "$((RATE / 4 > 0 ? RATE / 4 : 1))" "http://127.0.0.1:$port/leak?kb=$KB" >"$OUT/hey" 2>&1 || true
wait "$sampler" || true
stop_server "$id"

mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
recycles=$(grep -c "is above --max-worker-memory" "$OUT/$id.log" || true)
ceiling_kills=$(grep -c "above the memory ceiling" "$OUT/$id.log" || true)
statuses=$(awk '/Status code distribution:/ {on = 1; next} on && /\[[0-9]+\]/ {gsub(/[\[\]]/, "", $1); printf "%s%s: %s", sep, $1, $2; sep = ", "} on && /^$/ && sep {on = 0}' "$OUT/hey")
errors=$(awk '/Error distribution:/ {on = 1; next} on && /\[[0-9]+\]/ {n += $1} END {print n + 0}' "$OUT/hey")
total_requests=$(awk '/\[[0-9]+\][[:space:]]+[0-9]+ responses/ {n += $2} END {print n + 0}' "$OUT/hey")
largest=$(awk 'BEGIN {m = 0} $3 > m {m = $3} END {print m}' "$OUT/pss")
first_total=$(awk 'NR == 5 {print $2}' "$OUT/pss")
max_total=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$OUT/pss")
limit_line=$(grep -m1 -o "Workers. GC budget.*" "$OUT/$id.log" || true)
{
  echo "# Recycling by memory under a leak: --max-worker-memory"
  echo
  echo "- command: \`bench/memory-recycling.sh $(tidy <<<"$ARGS_SHOWN")\`"
  echo "- server: \`corral $FLAGS -b 127.0.0.1:PORT tests/apps/TestApp/bin/Release/net10.0/TestApp.dll\` (ceiling: 1.5 x the limit)"
  echo "- load: \`hey -z ${DURATION}s -c 4 -q $((RATE / 4 > 0 ? RATE / 4 : 1)) /leak?kb=$KB\`: about $RATE requests a second, each keeping $KB KB more in the worker that serves it (about $((RATE * KB / 1024)) MB/s leaked in all)"
  echo "- memory: the PSS of each of the master's children from /proc/PID/smaps_rollup, every second"
  result_facts
  echo
  echo "| requests | statuses | client errors | memory recycles | ceiling kills | largest worker PSS (MiB) | limit / ceiling (MiB) | workers' total PSS at 5 s / largest (MiB) |"
  echo "|---:|---|---:|---:|---:|---:|---|---|"
  echo "| $total_requests | $statuses | $errors | $recycles | $ceiling_kills | $(mib "$largest") | $LIMIT / 1.5 x | $(mib "${first_total:-0}") / $(mib "$max_total") |"
  echo
  echo "Workers' total PSS every 10 s (MiB):"
  echo
  echo "| second | total | largest worker |"
  echo "|---:|---:|---:|"
  awk 'NR % 10 == 0 {printf "| %d | %.1f | %.1f |\n", $1, $2 / 1048576, $3 / 1048576}' "$OUT/pss"
  [[ -z $limit_line ]] || { echo; echo "The master's GC budget line: \`$limit_line\`"; }
} >"$BENCH_DIR/results/memory-recycling.md"
log "wrote bench/results/memory-recycling.md"
