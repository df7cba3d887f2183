#!/usr/bin/env bash
# Two corral builds side by side in one run: before and after a change that must not cost anything
# (a refactor, a dependency bump). BenchApp `/` under each build with the same flags; rounds alternate
# A and B (which goes first alternates too). Per round: the workers' CPU µs per request at a fixed
# rate (hey -q: steadier on a shared machine than req/s), and req/s and p99 at saturation (wrk, on
# the same cores as the server).
#
#   bench/ab.sh --a A/corral.dll --b B/corral.dll [--a-label TEXT] [--b-label TEXT] [--name NAME]
#               [--flags "-k async -w 2"] [--rounds R] [--duration S]
#
# Build each side first, e.g. `git worktree add ../before REV && dotnet build ../before/src/Corral -c Release -o ../before-out`.
# Writes bench/results/ab-NAME.md. About 2 x rounds x (duration x 2 + 8 s).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
A_DLL="" B_DLL="" A_LABEL="" B_LABEL="" NAME="" FLAGS="-k async -w 2" ROUNDS=5 DURATION=10
# The command as typed, an argument with spaces in quotes.
ARGS_SHOWN=$(for a in "$@"; do if [[ $a == *[[:space:]]* ]]; then printf '"%s" ' "$a"; else printf '%s ' "$a"; fi; done)
ARGS_SHOWN=${ARGS_SHOWN% }
usage() { echo "usage: $0 --a DLL --b DLL [--a-label TEXT] [--b-label TEXT] --name NAME [--flags \"CORRAL FLAGS\"] [--rounds R] [--duration S]" >&2; exit 2; }
while (($#)); do
  case $1 in
    --a) A_DLL=$(realpath "$2"); shift ;;
    --b) B_DLL=$(realpath "$2"); shift ;;
    --a-label) A_LABEL=$2; shift ;;
    --b-label) B_LABEL=$2; shift ;;
    --name) NAME=$2; shift ;;
    --flags) FLAGS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    *) usage ;;
  esac
  shift
done
[[ -f $A_DLL && -f $B_DLL && -n $NAME ]] || usage
require_tools wrk hey curl python3 dotnet
RATE_CONNS=20 RATE_PER_CONN=250   # hey -c 20 -q 250: 5,000 req/s
OUT="$BENCH_DIR/out/ab-$NAME"
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'stop_all_servers' EXIT
log "building BenchApp (Release)"
build_dotnet "$BENCH_DIR/BenchApp"

declare -A DLL=([A]=$A_DLL [B]=$B_DLL) RPS=() P99=() CPU=()
# What the report says of each build: its label, or its path if inside the repository (a path of this
# machine outside it is not written down).
label_of() { local p; p=$(tidy <<<"$1"); [[ $p == /* ]] && echo "$2.dll" || echo "\`$p\`"; }
declare -A LABEL=([A]=${A_LABEL:-$(label_of "$A_DLL" A)} [B]=${B_LABEL:-$(label_of "$B_DLL" B)})

for ((r = 1; r <= ROUNDS; r++)); do
  order=(A B)
  ((r % 2)) || order=(B A)
  for side in "${order[@]}"; do
    port=$(next_port)
    # shellcheck disable=SC2086
    start_server "$side" "$OUT" dotnet "${DLL[$side]}" $FLAGS -b "127.0.0.1:$port" "$BENCH_APP_DLL"
    wait_ready "$side" "$port" 60 "$OUT" || { log "$side: ${SERVER_NOTE[$side]}"; exit 1; }
    read -r cpu rps p99 < <(measure_cost "$port" "$OUT/$side.$r" "$DURATION" "$RATE_CONNS" "$RATE_PER_CONN")
    stop_server "$side"
    CPU[$side]+="$cpu " RPS[$side]+="$rps " P99[$side]+="$p99 "
    log "round $r $side: $cpu µs CPU/request at $((RATE_CONNS * RATE_PER_CONN)) req/s; $rps req/s, p99 $p99 at saturation"
  done
done

ratios() { # ratios "B values" "A values": B/A per round ("-" where either has no figure)
  paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) |
    awk '{if ($1 ~ /^[0-9.]+$/ && $2 ~ /^[0-9.]+$/ && $2 > 0) printf "%.2f ", $1 / $2; else printf "- "}'
}
numbers() { tr ' ' '\n' | grep -E '^[0-9.]+$'; } # the figures of a list, without the "-"s
{
  echo "# Two corral builds side by side: $NAME"
  echo
  # The builds' own paths are this machine's: the command shows A.dll and B.dll, the table their labels.
  echo "- command: \`bench/ab.sh $(sed -e "s#$A_DLL#A.dll#g; s#$B_DLL#B.dll#g" <<<"$ARGS_SHOWN" | tidy)\`"
  echo "- server: \`corral $FLAGS -b 127.0.0.1:PORT bench/BenchApp/bin/Release/net10.0/BenchApp.dll\` (\`/\`: Hello, World!), A and B alternating, $ROUNDS rounds"
  echo "- CPU per request: the workers' user+system CPU time (/proc/PID/stat) during \`hey -z ${DURATION}s -c $RATE_CONNS -q $RATE_PER_CONN\` ($((RATE_CONNS * RATE_PER_CONN)) req/s offered, keep-alive where the server keeps connections), divided by the requests answered; A.dll and B.dll in the command are the two builds"
  echo "- saturation: \`wrk -t2 -c64 -d${DURATION}s --latency\`; both after a 3 s warm-up"
  machine_facts | awk -F'\t' '$1 ~ /^(date|nproc|cpu|dotnet|commit|load)$/ {print "- " $1 ": " $2}'
  echo
  echo "| build | CPU µs per request (median) | per round | req/s at saturation (median) | per round | p99 per round |"
  echo "|---|---:|---|---:|---|---|"
  for side in A B; do
    echo "| $side: ${LABEL[$side]} | $(numbers <<<"${CPU[$side]}" | median) | ${CPU[$side]% } | $(median <<<"${RPS[$side]}") | ${RPS[$side]% } | ${P99[$side]% } |"
  done
  echo
  cpu_r=$(ratios "${CPU[B]}" "${CPU[A]}") rps_r=$(ratios "${RPS[B]}" "${RPS[A]}")
  echo "| B / A | median | per round |"
  echo "|---|---:|---|"
  echo "| CPU per request | $(numbers <<<"$cpu_r" | median) | ${cpu_r% } |"
  echo "| req/s at saturation | $(numbers <<<"$rps_r" | median) | ${rps_r% } |"
  echo
  echo "Servers, hey and wrk share the machine's cores with other tenants: identical builds differ by 10-30% from round to round here, so read the per-round ratios, not one figure."
} >"$BENCH_DIR/results/ab-$NAME.md"
log "wrote bench/results/ab-$NAME.md"
