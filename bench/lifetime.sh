#!/usr/bin/env bash
# What age recycling costs under load: BenchApp `/` under `corral -w 3` at saturation (wrk), once without
# and once with `--max-worker-lifetime 10 --max-worker-lifetime-jitter 3`, in interleaved rounds (which
# goes first alternates). Per run: req/s, wrk's errors (non-2xx responses, socket errors), the lifetime
# recycles the master logged, the smallest gap between two of them (stamped as the lines arrive), the
# most recycle successors booting at once (from "Booting worker" / "Worker ready"), and whether the
# CPU cap stretched the recycling (its "Recycling stretched" line).
#
#   bench/lifetime.sh [--rounds R] [--duration S] [--corral DLL] [--lifetime-flags "FLAGS"]
#
# Writes bench/results/lifetime.md. About 2 x rounds x (duration + 10 s).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROUNDS=3 DURATION=60 LIFETIME_FLAGS="--max-worker-lifetime 10 --max-worker-lifetime-jitter 3"
BASE_FLAGS="-w 3 --log-level debug"
ARGS_SHOWN=$(for a in "$@"; do if [[ $a == *[[:space:]]* ]]; then printf '"%s" ' "$a"; else printf '%s ' "$a"; fi; done)
ARGS_SHOWN=${ARGS_SHOWN% }
usage() { echo "usage: $0 [--rounds R] [--duration S] [--corral DLL] [--lifetime-flags \"FLAGS\"]" >&2; exit 2; }
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --corral) CORRAL_DLL=$(realpath "$2"); shift ;;
    --lifetime-flags) LIFETIME_FLAGS=$2; shift ;;
    *) usage ;;
  esac
  shift
done
require_count --rounds "$ROUNDS"
require_count --duration "$DURATION"
require_tools wrk curl dotnet
OUT="$BENCH_DIR/out/lifetime"
rm -rf "$OUT" && mkdir -p "$OUT"
STAMPER=""
trap 'stop_all_servers; [[ -z $STAMPER ]] || kill "$STAMPER" 2>/dev/null || true' EXIT
resolve_corral
[[ -z $CORRAL_NOTE ]] || exit 1
log "building BenchApp (Release)"
build_dotnet "$BENCH_DIR/BenchApp"

declare -A FLAGS=([off]="$BASE_FLAGS" [on]="$BASE_FLAGS $LIFETIME_FLAGS") RPS=() ERR=() RECYCLES=() GAP=() OVERLAP=() STRETCHED=()

# stamp_recycles LOG OUT: writes the arrival time (epoch seconds) of each lifetime recycle line of LOG to OUT, in the background.
stamp_recycles() {
  tail -n +1 -F "$1" 2>/dev/null | while IFS= read -r line; do
    [[ $line == *"reached --max-worker-lifetime"* ]] && printf '%s\n' "$EPOCHREALTIME"
  done >"$2" &
  STAMPER=$!
}

# most_booting LOG: the most workers booting at once after the first three were ready (each one a recycle's successor).
most_booting() {
  awk '/Booting worker with pid: / {b[$NF] = 1; n++; if (ready >= 3 && n > most) most = n}
       /Worker ready \(pid: / {p = $NF; sub(/\)$/, "", p); if (p in b) {delete b[p]; n--; ready++}}
       END {print most + 0}' "$1"
}

for ((r = 1; r <= ROUNDS; r++)); do
  order=(off on)
  ((r % 2)) || order=(on off)
  for side in "${order[@]}"; do
    id="$side.$r"
    start_bench_server "$id" corral "${FLAGS[$side]}" "$OUT"
    port=${SERVER_PORT[$id]}
    wait_ready "$id" "$port" 60 "$OUT" || { log "$id: ${SERVER_NOTE[$id]}"; exit 1; }
    stamp_recycles "$OUT/$id.log" "$OUT/$id.stamps"
    wrk -t2 -c64 -d"${DURATION}s" --latency "http://127.0.0.1:$port/" >"$OUT/$id.wrk"
    stop_server "$id"
    kill "$STAMPER" 2>/dev/null || true
    STAMPER=""
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$OUT/$id.wrk")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$OUT/$id.wrk")
    sock=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$OUT/$id.wrk")
    recycles=$(wc -l <"$OUT/$id.stamps")
    gap=$(sort -n "$OUT/$id.stamps" | awk 'NR > 1 {g = $1 - prev; if (min == "" || g < min) min = g} {prev = $1} END {if (min == "") print "-"; else printf "%.1f", min}')
    RPS[$side]+="$rps " ERR[$side]+="${non2xx:-0}/${sock:-0} " RECYCLES[$side]+="$recycles " GAP[$side]+="$gap "
    OVERLAP[$side]+="$(most_booting "$OUT/$id.log") "
    grep -q "Recycling stretched" "$OUT/$id.log" && STRETCHED[$side]=$(grep -m1 -o "Recycling stretched.*" "$OUT/$id.log")
    log "round $r $side: $rps req/s, non-2xx/socket errors ${non2xx:-0}/${sock:-0}, $recycles lifetime recycles, smallest gap $gap s"
  done
done

ratios() { # ratios "B values" "A values": B/A per round
  paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) |
    awk '{if ($2 > 0) printf "%.3f ", $1 / $2; else printf "- "}'
}
{
  echo "# Age recycling under load: --max-worker-lifetime"
  echo
  echo "- command: \`bench/lifetime.sh $(tidy <<<"$ARGS_SHOWN")\`"
  echo "- server: \`corral FLAGS -b 127.0.0.1:PORT bench/BenchApp/bin/Release/net10.0/BenchApp.dll\` (\`/\`: Hello, World!), off: \`$BASE_FLAGS\`, on: \`$BASE_FLAGS $LIFETIME_FLAGS\`, alternating, $ROUNDS rounds"
  echo "- load: \`wrk -t2 -c64 -d${DURATION}s --latency\` from the server's ready, on the same cores as the server"
  echo "- recycles: the master's \"reached --max-worker-lifetime\" lines, stamped as they arrive; most booting: the most successors booting at once after the first three workers were ready (1: never two)"
  result_facts
  echo
  echo "| run | req/s (median) | req/s per round | non-2xx / socket errors per round | lifetime recycles per round | smallest gap between recycles (s) | most booting at once |"
  echo "|---|---:|---|---|---|---|---|"
  for side in off on; do
    echo "| $side | $(median <<<"${RPS[$side]}") | ${RPS[$side]% } | ${ERR[$side]% } | ${RECYCLES[$side]% } | ${GAP[$side]% } | ${OVERLAP[$side]% } |"
  done
  echo
  r=$(ratios "${RPS[on]}" "${RPS[off]}")
  echo "on / off req/s: median $(median <<<"$r"), per round ${r% }"
  echo
  if [[ -n ${STRETCHED[on]:-} ]]; then echo "The CPU cap stretched the recycling: \`${STRETCHED[on]}\`"; else echo "The CPU cap did not stretch the recycling."; fi
} >"$BENCH_DIR/results/lifetime.md"
log "wrote bench/results/lifetime.md"
