#!/usr/bin/env bash
# What --spare-workers buys: how soon a SIGKILLed worker's capacity is back, with and without a spare.
#
#   bench/spare.sh [--rounds R] [--corral DLL]
#
# tests/apps/TestApp (Release) under `corral -k sync -w 1 --warmup-requests 50 --warmup-path /pid` (one
# sync worker = one request slot, so who answers is who has the capacity; every new worker, spare or
# not, is warmed up on the path the client asks for), once without and once with `--spare-workers 1`; both corrals run
# side by side, the rounds alternate between them (which goes first alternates too). Each round: a
# client sends GET /pid in a tight loop (one connection per request, one at a time); after 50 answers
# it SIGKILLs the worker that answers; it records the time from the kill to the first 200 from another
# PID ("capacity back"), the longest any request took around the kill, the failed requests, and the
# time until the master has its full set again (a new worker, or a new spare, said ready). At the end,
# each worker's PSS (/proc/PID/smaps_rollup): what an idle spare costs. Writes bench/results/spare-workers.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROUNDS=10
usage() { echo "usage: $0 [--rounds R] [--corral DLL]" >&2; exit 2; }
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --corral) CORRAL_DLL=$(realpath "$2"); shift ;;
    *) usage ;;
  esac
  shift
done
require_count --rounds "$ROUNDS"
require_tools python3 curl dotnet
OUT="$BENCH_DIR/out/spare"
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'stop_all_servers' EXIT
resolve_corral
[[ -z $CORRAL_NOTE ]] || exit 1
build_testapp
BASE_FLAGS="-k sync -w 1 --warmup-requests 50 --warmup-path /pid --log-level debug"

declare -A FLAGS=([none]="$BASE_FLAGS" [spare]="$BASE_FLAGS --spare-workers 1")
declare -A CHILDREN=([none]=1 [spare]=2)
for id in none spare; do
  port=$(next_port)
  SERVER_PORT[$id]=$port
  read -r -a args <<<"${FLAGS[$id]}"
  start_server "$id" "$OUT" dotnet "$CORRAL_DLL" "${args[@]}" -b "127.0.0.1:$port" "$APP_DLL"
  wait_ready "$id" "$port" 120 "$OUT" || { log "$id: ${SERVER_NOTE[$id]}"; exit 1; }
done

# The master of a setting: the `timeout` started in its session runs `dotnet corral.dll`.
master_of() { pgrep -P "${SERVER_PGID[$1]}" -f corral.dll | head -1; }

PROBE=$(cat <<'PY'
import http.client, json, os, sys, time

port, master, log, children = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

def kids():
    out = set()
    for t in os.listdir(f"/proc/{master}/task"):
        with open(f"/proc/{master}/task/{t}/children") as f:
            out.update(int(p) for p in f.read().split())
    return out

def ready_lines():
    with open(log, errors="replace") as f:
        return sum("Worker ready (pid:" in l for l in f)

def get():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", "/pid", headers={"Connection": "close"})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()

def wait_full(ready_before, t0, limit=90):
    while time.monotonic() - t0 < limit:
        if ready_lines() > ready_before and len(kids()) == children:
            return time.monotonic()
        time.sleep(0.01)
    return None

# The full set first (after the previous round, or the start).
wait_full(-1, time.monotonic())
ready0 = ready_lines()
serving = int(get()[1])
served = failures = 0
worst = 0.0
killed_at = back_at = None
after = 0
while True:
    t = time.monotonic()
    try:
        status, body = get()
        ok = status == 200
    except Exception:
        ok, body = False, ""
    took = time.monotonic() - t
    if killed_at is not None:
        worst = max(worst, took)
        if not ok:
            failures += 1
        elif back_at is None and body != str(serving):
            back_at = time.monotonic()
        if back_at is not None:
            after += 1
            if after >= 20:
                break
        if time.monotonic() - killed_at > 60:
            break
        continue
    served += 1
    if served == 50:
        killed_at = time.monotonic()
        os.kill(serving, 9)
full_at = wait_full(ready0, killed_at)
print(json.dumps({
    "back_ms": round((back_at - killed_at) * 1000, 1) if back_at else None,
    "worst_ms": round(worst * 1000, 1),
    "failures": failures,
    "full_ms": round((full_at - killed_at) * 1000) if full_at else None,
}))
PY
)

pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

declare -A RESULTS=()
for r in $(seq 1 "$ROUNDS"); do
  if ((r % 2)); then order="none spare"; else order="spare none"; fi
  for id in $order; do
    line=$(python3 -c "$PROBE" "${SERVER_PORT[$id]}" "$(master_of "$id")" "$OUT/$id.log" "${CHILDREN[$id]}")
    RESULTS[$id]+="$line"$'\n'
    log "round $r $id: $line"
  done
done

# What each worker of the spare setting costs once idle: PSS of the one that serves and of the spare.
spare_master=$(master_of spare)
serving_pid=$(curl -fs "http://127.0.0.1:${SERVER_PORT[spare]}/pid")
sleep 5
PSS_LINES=""
for w in $(pgrep -P "$spare_master"); do
  role=spare
  [[ $w == "$serving_pid" ]] && role=serving
  PSS_LINES+="| $role | $(awk -v k="$(pss_kib "$w")" 'BEGIN {printf "%.1f", k / 1024}') |"$'\n'
done

SUMMARY=$(cat <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
def col(k): return [r[k] for r in rows if r[k] is not None]
def med(k):
    v = col(k)
    return f"{statistics.median(v):.1f}" if v else "-"
def mx(k):
    v = col(k)
    return f"{max(v):.1f}" if v else "-"
fails = sum(r["failures"] for r in rows)
print(f"| {sys.argv[1]} | {len(rows)} | {med('back_ms')} | {mx('back_ms')} | {med('worst_ms')} | {mx('worst_ms')} | {fails} | {med('full_ms')} |")
PY
)
summarise() { python3 -c "$SUMMARY" "$1"; }

RESULT="$BENCH_DIR/results/spare-workers.md"
{
  echo "# Warm spares: capacity back after a SIGKILL"
  echo
  echo "\`bench/spare.sh --rounds $ROUNDS\`: tests/apps/TestApp (Release) under \`corral $BASE_FLAGS\`, without and with \`--spare-workers 1\`,"
  echo "both running side by side, rounds alternating. Each round a client sends GET /pid in a tight loop (a new connection per"
  echo "request, one at a time), SIGKILLs the worker that answers after 50 answers, and records: the time from the kill to the"
  echo "first 200 from another PID (capacity back), the longest request around the kill (it waited in the kernel's queue), the"
  echo "failed requests (the one in flight on the killed worker), and the time until the master has its full set again"
  echo "(a new worker, or a new spare, ready)."
  echo
  result_facts
  echo
  echo "| setting | rounds | capacity back, median (ms) | max (ms) | longest request, median (ms) | max (ms) | failed requests (all rounds) | full set again, median (ms) |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s' "${RESULTS[none]}" | summarise "-w 1"
  printf '%s' "${RESULTS[spare]}" | summarise "-w 1 --spare-workers 1"
  echo
  echo "PSS of each worker of the \`--spare-workers 1\` corral after the rounds (idle, /proc/PID/smaps_rollup): the spare's is what one costs."
  echo
  echo "| worker | PSS (MiB) |"
  echo "|---|---|"
  printf '%s' "$PSS_LINES"
  echo
  echo "Rounds (JSON, in order): without a spare"
  echo
  echo '```'
  printf '%s' "${RESULTS[none]}"
  echo '```'
  echo
  echo "with \`--spare-workers 1\`"
  echo
  echo '```'
  printf '%s' "${RESULTS[spare]}"
  echo '```'
} >"$RESULT"
log "wrote $(tidy <<<"$RESULT")"
