#!/usr/bin/env bash
# The README's test command: install what the integration tests need when it is missing (Debian's
# packages; as root, or through sudo), run every test under a hard time limit, and end with one line
# "N passed, N failed" for the whole run. .ci/run calls this script. Exit status: dotnet test's.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# command → Debian package. redis-server, nginx: real peers of the integration tests;
# systemd-socket-activate: socket activation; ip: the scale-out test's network namespaces;
# wrk, hey, gunicorn, flask, gevent: the benchmarks' load generators and the real Gunicorn;
# chromium: the status page test (driven by Playwright for .NET, never a browser it downloads);
# gcc, libc6-dev, zlib1g-dev: the Native AOT test links SeedApp with the C toolchain;
# afl-fuzz: the fuzz targets' short run in .ci/run.
packages=(redis-server nginx libnginx-mod-stream systemd iproute2 wrk hey gunicorn python3-flask
  python3-gevent procps curl chromium gcc libc6-dev zlib1g-dev afl++)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing the tests' Debian packages: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "tests/run.sh: missing ${missing[*]}; install them as root (apt-get install)" >&2; exit 2; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# A hard limit so that a hung run still ends; --blame-hang-timeout names the test that hung.
timeout --kill-after=30s 45m dotnet test Corral.slnx --blame-hang-timeout 5m "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# dotnet test prints one summary per test assembly: "Passed!  - Failed: 0, Passed: 12, Skipped: 0, ..."
passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # a crash, a hang or a build error: no test summary, but not a pass
fi
echo "$passed passed, $failed failed"
exit "$status"
