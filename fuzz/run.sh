#!/usr/bin/env bash
# Builds the fuzz targets, instruments Corral's assemblies with SharpFuzz, and runs afl-fuzz on each
# target for a bounded time (fuzz/README.md).
#
#   fuzz/run.sh [TARGET...] [-t SECONDS]     TARGET: proxy control config accesslog (default: all)
#
# Exits 1 if a target no longer builds, if a seed of fuzz/corpus crashes it, or if afl-fuzz found a
# crash (each one is replayed and its exception printed; the inputs stay in fuzz/out/TARGET/default/crashes/).
# afl-fuzz failing to start or stopping early (a machine issue, not a finding) is reported and does
# not fail the run. Hangs (afl-fuzz's timeouts) are reported, not failed.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(proxy control config accesslog)
seconds=60
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) seconds="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz: unknown target '$t' (targets: ${all_targets[*]})" >&2; exit 2; }
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
out=fuzz/out
bin=$out/bin

# 1. Build (a fresh publish: instrumenting twice is refused) and instrument the assemblies under test.
echo "fuzz: building fuzz/Corral.Fuzz"
dotnet tool restore >/dev/null
rm -rf "$bin"
mkdir -p "$out"
if ! dotnet publish fuzz/Corral.Fuzz -c Release -o "$bin" >"$out/build.log" 2>&1; then
  cat "$out/build.log"
  echo "fuzz: FAILED: fuzz/Corral.Fuzz does not build"
  exit 1
fi
for dll in corral.dll Corral.Agent.dll; do
  if ! dotnet sharpfuzz "$bin/$dll" >>"$out/build.log" 2>&1; then
    cat "$out/build.log"
    echo "fuzz: FAILED: sharpfuzz could not instrument $dll"
    exit 1
  fi
done
fuzz=(dotnet "$bin/Corral.Fuzz.dll")
# The targets' temporary files (the config target's config file, the runtime's own) go here: a child
# that afl-fuzz kills leaves its file behind.
rm -rf "$out/tmp"
mkdir -p "$out/tmp"
export TMPDIR=$PWD/$out/tmp

# 2. The seeds must pass as they are: a crash there needs no fuzzer.
failed=0
for t in "${targets[@]}"; do
  if ! "${fuzz[@]}" "$t" --replay "fuzz/corpus/$t" >"$out/$t.seeds.log" 2>&1; then
    cat "$out/$t.seeds.log"
    echo "fuzz: FAILED: a seed of fuzz/corpus/$t crashes the $t target"
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1

if ! command -v afl-fuzz >/dev/null; then
  echo "fuzz: afl-fuzz is not installed (Debian: apt-get install afl++); the seeds passed, nothing fuzzed"
  exit 0
fi

# 3. afl-fuzz, with what a plain machine needs: no CPU governor check, no core_pattern requirement
# (a crash here is a .NET exception SharpFuzz reports, never a core dump), no CPU binding (other
# processes may hold every core), a patient fork-server start (dotnet boots in ~0.2 s, slower on a
# busy machine), no curses UI. `dotnet` is not an afl-instrumented binary: SharpFuzz instruments the
# .NET assemblies instead.
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
  AFL_NO_UI=1 AFL_FORKSRV_INIT_TMOUT=60000 AFL_FAST_CAL=1 AFL_NO_WARN_INSTABILITY=1
unset AFL_CUSTOM_MUTATOR_LIBRARY AFL_PRELOAD
# No network for the targets: a --statsd-host name in a fuzzed config is looked up by ConfigLoader,
# and thousands of such lookups must not reach the machine's resolver. Without the right to make a
# network namespace (not root), the targets run as they are.
isolate=()
if unshare --net true 2>/dev/null; then
  isolate=(unshare --net)
else
  echo "fuzz: cannot make a network namespace (not root?): the targets run with the machine's network"
fi

for t in "${targets[@]}"; do
  dir=$out/$t
  rm -rf "$dir"
  "${fuzz[@]}" "$t" --dict >"$out/$t.dict"
  echo "fuzz: $t: afl-fuzz for ${seconds}s (log: $out/$t.afl.log)"
  set +e
  # -V: stop after SECONDS; the outer timeout is a safety net for a fork server that never answers.
  timeout --kill-after=10s $((seconds + 120)) "${isolate[@]}" afl-fuzz -i "fuzz/corpus/$t" -o "$dir" -x "$out/$t.dict" \
    -m none -t 5000 -V "$seconds" -- "${fuzz[@]}" "$t" >"$out/$t.afl.log" 2>&1
  status=$?
  set -e
  stats=$dir/default/fuzzer_stats
  crashes=$(find "$dir/default/crashes" -name 'id:*' 2>/dev/null | wc -l)
  hangs=$(find "$dir/default/hangs" -name 'id:*' 2>/dev/null | wc -l)
  if [ -f "$stats" ]; then
    field() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
    echo "fuzz: $t: $(field execs_done) execs ($(field execs_per_sec)/s), $(field corpus_count) paths, $(field edges_found) edges (map coverage $(field bitmap_cvg)), $crashes crashes, $hangs hangs"
  else
    echo "fuzz: $t: afl-fuzz did not get going (exit $status); last lines of $out/$t.afl.log:"
    tail -n 15 "$out/$t.afl.log" | sed 's/^/    /'
  fi
  if [ "$crashes" -gt 0 ]; then
    # Replayed outside afl-fuzz: an exception is printed, an uncatchable one (stack overflow) kills
    # the replay. A "crash" that replays clean was a worker process that died another way (SharpFuzz
    # reports any death of its child as a crash: killed from outside, out of memory): reported, not failed.
    if "${fuzz[@]}" "$t" --replay "$dir/default/crashes" >"$out/$t.crashes.log" 2>&1; then
      echo "fuzz: $t: afl-fuzz reported $crashes crashes that do not reproduce (a child process that died another way); see $out/$t.crashes.log"
    else
      echo "fuzz: FAILED: $t: afl-fuzz found $crashes crashing inputs ($dir/default/crashes); replayed:"
      head -n 80 "$out/$t.crashes.log"
      failed=1
    fi
  elif [ "$status" -ne 0 ] && [ -f "$stats" ]; then
    echo "fuzz: $t: afl-fuzz stopped early (exit $status), no crash found; see $out/$t.afl.log"
  fi
done
exit "$failed"
