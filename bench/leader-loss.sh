#!/usr/bin/env bash
# What a dead async worker costs under --accept-policy pack, with and without --pack-leader-connections,
# against --accept-policy kernel and bare Kestrel, in alternating rounds. Every server runs for the
# whole run (BenchApp, corral -k async -w 2). Each round, for each server: a 3 s warm-up, a steady
# wrk run (req/s, p99), then (corral only) a second wrk run during which the worker holding the most
# connections is SIGKILLed halfway: the requests that failed (socket errors + non-2xx, as wrk counts
# them) and how the connections were split at the kill. Writes bench/results/leader-loss.md (or
# --out FILE).
#
#   bench/leader-loss.sh [--rounds R] [--duration S] [--conns C] [--caps "32 16"] [--server "ID=CORRAL ARGS"]... [--no-kill] [--out FILE]
#   (defaults: 5 rounds, 6 s runs, wrk -c50, caps 32 and 16: about 9 minutes; --server adds a corral of those arguments)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=5
DURATION=6
CONNS=50
CAPS="32 16"
KILL=1
EXTRA=()
RESULT="$BENCH_DIR/results/leader-loss.md"
ARGS_SHOWN=""
for a in "$@"; do [[ $a == *" "* || -z $a ]] && ARGS_SHOWN+="\"$a\" " || ARGS_SHOWN+="$a "; done
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --caps) CAPS=$2; shift 2 ;;
    --no-kill) KILL=0; shift ;;
    --server) [[ $2 == *=* ]] || { echo "--server: ID=CORRAL ARGS, not '$2'" >&2; exit 2; }; EXTRA+=("$2"); shift 2 ;;
    --out) RESULT=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--duration S] [--conns C] [--caps \"K1 K2\"] [--server "ID=CORRAL ARGS"]... [--no-kill] [--out FILE]" >&2; exit 2 ;;
  esac
done
require_count --rounds "$ROUNDS"
require_count --conns "$CONNS"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] && ((DURATION >= 4)) || { echo "--duration: whole seconds, 4 or more, not '$DURATION'" >&2; exit 2; }
for k in $CAPS; do require_count --caps "$k"; done
require_tools dotnet wrk ss curl python3 setsid timeout

OUT="$BENCH_DIR/out/leader-loss"
rm -rf "$OUT" && mkdir -p "$OUT"
trap stop_all_servers EXIT
log "building corral and BenchApp (Release)"
build_dotnet "$ROOT_DIR/src/Corral"
build_dotnet "$BENCH_DIR/BenchApp"
CORRAL_DLL=$CORRAL_DLL_DEFAULT

# id -> "kind|corral arguments"
declare -A SPEC=([kestrel]="kestrel|" [kernel]="corral|-k async -w 2 --accept-policy kernel" [pack]="corral|-k async -w 2 --accept-policy pack --pack-leader-connections 0")
IDS=(kestrel kernel pack)
for k in $CAPS; do
  SPEC[pack-$k]="corral|-k async -w 2 --accept-policy pack --pack-leader-connections $k"
  IDS+=("pack-$k")
done
for e in "${EXTRA[@]}"; do
  SPEC[${e%%=*}]="corral|${e#*=}"
  IDS+=("${e%%=*}")
done
for id in "${IDS[@]}"; do
  IFS='|' read -r kind sargs <<<"${SPEC[$id]}"
  start_bench_server "$id" "$kind" "$sargs" "$OUT"
  NEXT_PORT=$((SERVER_PORT[$id] + 1)) # next_port ran in a subshell
done
for id in "${IDS[@]}"; do
  wait_ready "$id" "${SERVER_PORT[$id]}" 90 "$OUT" || { log "$id did not start: ${SERVER_NOTE[$id]}"; exit 1; }
done

# wrk_run PORT FILE: prints "REQ_PER_S P99_MS ERRORS".
wrk_run() {
  timeout $((DURATION + 30)) wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$1/" >"$2" 2>&1 || true
  python3 "$BENCH_DIR/measure.py" wrk <"$2" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["rps"], r["p99_ms"], r["errors"])'
}

# split PORT: "pid count" per worker holding established connections on PORT, most first.
split() { ss -tnpH state established "( sport = :$1 )" | grep -o 'pid=[0-9]*' | sort | uniq -c | sort -rn | awk '{sub("pid=", "", $2); print $2, $1}'; }

# wait_workers ID N: until the corral ID has N workers that answer (after a kill, the replacement).
wait_workers() {
  local port=${SERVER_PORT[$1]} master i
  master=$(pgrep -f -n -- "-b 127.0.0.1:$port ") || return 0
  for ((i = 0; i < 150; i++)); do
    (($(pgrep -P "$master" | wc -l) >= $2)) && grep -q . <(curl -s --max-time 2 "http://127.0.0.1:$port/") && { sleep 1; return 0; }
    sleep 0.2
  done
}

printf 'round\tid\trps\tp99\terrors\tkill_rps\tkill_errors\tkilled_held\tsplit\n' >"$OUT/rounds.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
  # Rotate the order each round, so that no server always runs right after another.
  order=("${IDS[@]:r % ${#IDS[@]}}" "${IDS[@]:0:r % ${#IDS[@]}}")
  for id in "${order[@]}"; do
    port=${SERVER_PORT[$id]}
    [[ $id == kestrel ]] || wait_workers "$id" 2
    timeout 30 wrk -t2 -c"$CONNS" -d3s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    read -r rps p99 errs < <(wrk_run "$port" "$OUT/$id-$r.txt")
    krps=- kerrs=- held=- sp=-
    if [[ $id != kestrel && $KILL == 1 ]]; then
      wrk_run "$port" "$OUT/$id-$r-kill.txt" >"$OUT/$id-$r-kill.result" &
      wrk_pid=$!
      sleep $((DURATION / 2))
      for _ in 1 2 3 4 5; do
        split "$port" >"$OUT/$id-$r.split" || true # none yet (a very busy machine): look again
        [[ -s $OUT/$id-$r.split ]] && break
        sleep 0.2
      done
      read -r victim held <"$OUT/$id-$r.split" || true
      sp=$(awk '{print $2}' "$OUT/$id-$r.split" | paste -sd/)
      [[ -n ${victim:-} ]] && kill -KILL "$victim" 2>/dev/null || true
      wait "$wrk_pid" || true
      read -r krps _ kerrs <"$OUT/$id-$r-kill.result"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$id" "$rps" "$p99" "$errs" "$krps" "$kerrs" "$held" "$sp" >>"$OUT/rounds.tsv"
    log "round $r $id: $rps req/s p99 $p99 ms; killed a worker holding $held of $sp: $kerrs failed"
  done
done
for id in "${IDS[@]}"; do printf '%s\t%s\n' "$id" "${SERVER_CMD[$id]}" >>"$OUT/servers.tsv"; done
stop_all_servers

machine_facts >"$OUT/meta.tsv"
python3 - "$OUT/rounds.tsv" "$OUT/meta.tsv" "$OUT/servers.tsv" "bench/leader-loss.sh $ARGS_SHOWN" "$CONNS" "$DURATION" "$KILL" >"$RESULT" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
meta = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[2]) if "\t" in l)
servers = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[3])]
cmd, conns, dur, kill = sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7] == "1"
ids = [s[0] for s in servers]
by = {i: [r for r in rows if r["id"] == i] for i in ids}
med = lambda xs: statistics.median(xs) if xs else float("nan")
k_rps = {r["round"]: float(r["rps"]) for r in by["kestrel"]}
k_p99 = {r["round"]: float(r["p99"]) for r in by["kestrel"]}
print("# Losing the leader: --accept-policy pack with and without --pack-leader-connections" if kill else "# Throughput and p99: corral -k async -w 2 against bare Kestrel")
print()
print(f"- command: `{cmd.strip()}`")
print(f"- load: `wrk -t2 -c{conns} -d{dur}s --latency` on `/` (BenchApp), after a 3 s warm-up, each server in turn, {len(k_rps)} rounds, the order rotated each round" +
      ("; then a second run of the same during which the worker holding the most connections is SIGKILLed halfway (the master starts a replacement)" if kill else ""))
print(f"- machine: {meta.get('nproc')} cores, {meta.get('cpu')}, {meta.get('kernel')}, .NET {meta.get('dotnet')}; "
      f"date {meta.get('date')}; commit {meta.get('commit')}; load average at the end {meta.get('load')}; wrk on the same cores; other jobs ran on the machine")
print()
print("| server | req/s (median) | vs Kestrel, per round (median) | p99 (median) | p99 vs Kestrel's, per round (median) |" + (" failed when a worker is killed (median, per round) | connections the killed worker held (median) |" if kill else ""))
print("|---|---:|---:|---:|---:|" + ("---:|---:|" if kill else ""))
for i in ids:
    g = by[i]
    rr = [float(r["rps"]) / k_rps[r["round"]] for r in g]
    pr = [float(r["p99"]) / k_p99[r["round"]] for r in g]
    line = (f"| {i} | {med([float(r['rps']) for r in g]):,.0f} | {med(rr):.2f}× ({', '.join(f'{x:.2f}' for x in rr)}) | "
            f"{med([float(r['p99']) for r in g]):.2f} ms | {med(pr):.2f}× ({', '.join(f'{x:.2f}' for x in pr)}) |")
    if kill:
        if i == "kestrel":
            line += " | |"
        else:
            fe = [int(r["kill_errors"]) for r in g if r["kill_errors"] not in ("-", "")]
            he = [int(r["killed_held"]) for r in g if r["killed_held"] not in ("-", "")]
            line += f" {med(fe):g} ({', '.join(map(str, fe))}) | {med(he):g} |"
    print(line)
print()
print("Per round:")
print()
print("| round | server | req/s | p99 | errors | " + ("req/s with the kill | failed | connections per worker at the kill |" if kill else ""))
print("|---:|---|---:|---:|---:|" + ("---:|---:|---|" if kill else ""))
for r in rows:
    line = f"| {r['round']} | {r['id']} | {float(r['rps']):,.0f} | {float(r['p99']):.2f} ms | {r['errors']} |"
    if kill:
        kr = r["kill_rps"]
        line += f" {float(kr):,.0f} | {r['kill_errors']} | {r['split']} |" if kr not in ("-", "", "None") else " | | |"
    print(line)
print()
print("Servers:")
print()
for i, c in servers:
    print(f"- {i}: `{c}`")
PY
log "wrote $(tidy <<<"$RESULT")"
