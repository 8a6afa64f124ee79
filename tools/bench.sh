#!/usr/bin/env bash
# Load test of a real mirrord process against the baseline server, with
# wrk on loopback (docs/BENCHMARKS.md). Needs wrk (apt-get install wrk).
# Every run is bounded: wrk -d sets its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
V=${VECTORS:-../shared/vectors/capgo}
T=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
go build -o "$T/mirrord" ./cmd/mirrord
go build -o "$T/base" ./tools/benchbaseline
"$T/mirrord" serve --data "$T/d" --http 127.0.0.1:18089 --p2p /ip4/127.0.0.1/tcp/0 2>"$T/log" &
for _ in $(seq 100); do curl -sf http://127.0.0.1:18089/readyz >/dev/null && break; sleep 0.1; done
export MIRRORD_SERVER=http://127.0.0.1:18089 MIRRORD_TOKEN=$(cat "$T/d/admin.token")
"$T/mirrord" app create com.example.bench >/dev/null
mkdir -p "$T/src" && cp -r "$V/src-1.0.2/." "$T/src/" && head -c 64000000 /dev/urandom > "$T/src/big.bin"
"$T/mirrord" publish --app com.example.bench --version 1.0.1 --channel production "$T/src" >/dev/null
BODY='{"platform":"android","device_id":"8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f","app_id":"com.example.bench","custom_id":"","version_build":"1.0.0","version_code":"10","version_os":"14","version_name":"builtin","plugin_version":"8.51.23","is_emulator":false,"is_prod":true,"install_source":"google_play","defaultChannel":""}'
curl -s -X POST http://127.0.0.1:18089/updates -H 'Content-Type: application/json' -d "$BODY" > "$T/answer.json"
URL=$(sed -E 's/.*"url":"([^"]*)".*/\1/' "$T/answer.json")
curl -s "$URL" -o "$T/bundle.zip"
"$T/base" -addr 127.0.0.1:18090 -answer "$T/answer.json" -file "$T/bundle.zip" &
sleep 0.5
cat > "$T/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
LUA
run() { echo "== $1"; wrk -t2 -c64 -d${DUR:-10s} --latency "${@:2}" | grep -E 'Requests/sec|Transfer/sec|99%|50%'; }
run "updates: baseline bare net/http" -s "$T/post.lua" http://127.0.0.1:18090/updates
run "updates: mirrord" -s "$T/post.lua" http://127.0.0.1:18089/updates
run "updates: baseline bare net/http (again)" -s "$T/post.lua" http://127.0.0.1:18090/updates
run "updates: mirrord" -s "$T/post.lua" http://127.0.0.1:18089/updates
echo "zip: $(stat -c %s "$T/bundle.zip") bytes"
run "download: baseline http.ServeFile" -c4 http://127.0.0.1:18090/file
run "download: mirrord" -c4 "$URL"
