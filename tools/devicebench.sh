#!/usr/bin/env bash
# Device paths against a bare handler (docs/BENCHMARKS.md, issue 14):
# real mirrord processes and tools/benchbaseline pinned to one core
# (SERVER_CPU), wrk pinned to the other (LOAD_CPU), loads run one at a
# time and interleaved (baseline, then each binary) for ROUNDS rounds.
# Needs wrk (apt-get install wrk) and taskset. Every run is bounded by
# wrk -d. Extra binaries to compare: NAME=PATH arguments, e.g.
#   DUR=5s ROUNDS=3 bash tools/devicebench.sh old=/tmp/mirrord-old
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-5s} ROUNDS=${ROUNDS:-2} SCPU=${SERVER_CPU:-1} LCPU=${LOAD_CPU:-0} CONNS=${CONNS:-32}
T=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
go build -o "$T/new" ./cmd/mirrord
go build -o "$T/base" ./tools/benchbaseline
BINS=("new=$T/new" "$@")
APP=com.example.bench DEV=8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f
body() { echo '{"platform":"android","device_id":"'$DEV'","app_id":"'$APP'","custom_id":"","version_build":"1.0.0","version_code":"10","version_os":"14","version_name":"'$1'","plugin_version":"8.51.23","is_emulator":false,"is_prod":true,"install_source":"google_play","defaultChannel":""}'; }
body builtin > "$T/check-new.json"; body 1.0.1 > "$T/check-uptodate.json"
ACTIONS=(set download_complete app_moved_to_foreground update_fail)
{ printf '['; for i in $(seq 0 199); do [ $i -gt 0 ] && printf ','
  printf '{"platform":"android","device_id":"%s","app_id":"%s","action":"%s","version_name":"1.0.1","old_version_name":"builtin","version_build":"1.0.0","version_code":"10","version_os":"14","plugin_version":"8.51.23","is_emulator":false,"is_prod":true,"timestamp":%d}' "$DEV" "$APP" "${ACTIONS[$((i % 4))]}" $((1700000000000 + i))
done; printf ']'; } > "$T/stats.json"
for f in check-new check-uptodate stats; do
  printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nlocal f = io.open("%s")\nwrk.body = f:read("*a")\nf:close()\n' "$T/$f.json" > "$T/$f.lua"
done
port=18100; declare -A URL
for nb in "${BINS[@]}"; do
  name=${nb%%=*} bin=${nb#*=}; port=$((port + 1))
  MIRRORD_LIMITS_STATS_EVENTS_PER_SECOND=0 taskset -c "$SCPU" "$bin" serve --data "$T/d-$name" --http 127.0.0.1:$port --p2p /ip4/127.0.0.1/tcp/0 2>"$T/log-$name" &
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.1; done
  export MIRRORD_SERVER=http://127.0.0.1:$port MIRRORD_TOKEN=$(cat "$T/d-$name/admin.token")
  "$bin" app create $APP >/dev/null
  "$bin" publish --app $APP --version 1.0.1 --channel production testdata/capgo/src-1.0.1 >/dev/null
  URL[$name]=http://127.0.0.1:$port
  for f in check-new check-uptodate; do curl -s -X POST -H 'Content-Type: application/json' --data-binary @"$T/$f.json" ${URL[$name]}/updates > "$T/ans-$f-$name"; done
done
grep -q no_new_version "$T/ans-check-uptodate-new" || { echo "up-to-date answer: $(cat "$T/ans-check-uptodate-new")"; exit 1; }
taskset -c "$SCPU" "$T/base" -addr 127.0.0.1:18190 -answer "$T/ans-check-new-new" &
taskset -c "$SCPU" "$T/base" -addr 127.0.0.1:18191 -answer "$T/ans-check-uptodate-new" &
for _ in $(seq 50); do curl -sf -o /dev/null -X POST http://127.0.0.1:18191/stats && break; sleep 0.1; done
declare -A BASE=([check-new]=http://127.0.0.1:18190 [check-uptodate]=http://127.0.0.1:18191 [stats]=http://127.0.0.1:18191)
declare -A PATHS=([check-new]=/updates [check-uptodate]=/updates [stats]=/stats)
rps() { taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"$DUR" -s "$T/$1.lua" "$2" | awk '/Requests\/sec/ {print $2}'; }
printf '%-15s %-6s %-10s %12s %7s\n' load round target req/s ratio
for r in $(seq "$ROUNDS"); do
  for load in check-uptodate check-new stats; do
    b=$(rps $load "${BASE[$load]}${PATHS[$load]}")
    printf '%-15s %-6s %-10s %12s %7s\n' $load $r baseline "$b" 1.00
    for nb in "${BINS[@]}"; do
      name=${nb%%=*}; m=$(rps $load "${URL[$name]}${PATHS[$load]}")
      printf '%-15s %-6s %-10s %12s %7.2f\n' $load $r "$name" "$m" "$(echo "$m / $b" | bc -l)"
    done
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
