#!/usr/bin/env bash
# Small-file downloads (a delta manifest's files) from a real mirrord
# node against nginx serving the same files from a directory, and a bare
# Go handler serving them from memory (main.go), with wrk
# (docs/BENCHMARKS.md, "Issue 14: downloads"). Measuring only: needs
# nginx and wrk (apt-get install nginx wrk); CI does not run it.
#
#   bash tools/dlbench/run.sh [BIN...]
#
# Each BIN is a mirrord binary (default: one built from this tree); the
# servers are pinned to CPU 0 (taskset) and wrk to CPU 1, and every round
# runs nginx, then each BIN in turn, on the same node data. Every run is
# bounded by wrk -d. Env: FILES (500), ROUNDS (3), DUR (5s), CONNS (32).
set -euo pipefail
cd "$(dirname "$0")/../.."
FILES=${FILES:-500} ROUNDS=${ROUNDS:-3} DUR=${DUR:-5s} CONNS=${CONNS:-32}
T=$(mktemp -d) && chmod 755 "$T" # nginx workers run as another user
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
BINS=("$@")
if [ ${#BINS[@]} -eq 0 ]; then go build -o "$T/mirrord" ./cmd/mirrord; BINS=("$T/mirrord"); fi
go build -o "$T/bare" ./tools/dlbench
PORT=18289 NPORT=18290 BPORT=18291

start() { # BIN: a node on the shared data dir, pinned to CPU 0
	taskset -c 0 "$1" serve --data "$T/d" --http 127.0.0.1:$PORT --p2p /ip4/127.0.0.1/tcp/0 2>>"$T/log" &
	NODE=$!
	for _ in $(seq 200); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && return; sleep 0.05; done
	echo "node did not start" >&2; exit 1
}
stop() { kill "$NODE"; wait "$NODE" 2>/dev/null || true; }

# A release whose manifest has FILES files of 1-20 KiB of random bytes.
mkdir -p "$T/src/assets"
echo '<html></html>' >"$T/src/index.html"
for i in $(seq "$FILES"); do head -c $((1024 + RANDOM % 19456)) /dev/urandom >"$T/src/assets/f$i.js"; done
start "${BINS[0]}"
export MIRRORD_SERVER=http://127.0.0.1:$PORT MIRRORD_TOKEN=$(cat "$T/d/admin.token")
"${BINS[0]}" app create com.example.dl >/dev/null
"${BINS[0]}" publish --app com.example.dl --version 1.0.1 --channel production "$T/src" >/dev/null
BODY='{"platform":"android","device_id":"8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f","app_id":"com.example.dl","version_build":"1.0.0","version_code":"10","version_os":"14","version_name":"builtin","plugin_version":"8.51.23","is_emulator":false,"is_prod":true}'
curl -s -X POST http://127.0.0.1:$PORT/updates -H 'Content-Type: application/json' -d "$BODY" |
	grep -o '"download_url":"[^"]*"' | sed -E 's|.*127.0.0.1:[0-9]+(/[^"]*)"|\1|' >"$T/paths"
# nginx's root: the same files under the same paths, fetched from the node.
while read -r p; do mkdir -p "$T/www$(dirname "$p")"; curl -sf "http://127.0.0.1:$PORT$p" -o "$T/www$p"; done <"$T/paths"
stop
echo "$(wc -l <"$T/paths") files, $(du -sk "$T/www" | cut -f1) KiB"

mkdir -p "$T/ng"
cat >"$T/ng/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $T/ng/nginx.pid;
error_log $T/ng/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { application/javascript js; }
  default_type application/octet-stream;
  client_body_temp_path $T/ng/b; proxy_temp_path $T/ng/p; fastcgi_temp_path $T/ng/f;
  uwsgi_temp_path $T/ng/u; scgi_temp_path $T/ng/s;
  server {
    listen 127.0.0.1:$NPORT;
    root $T/www;
    add_header Cache-Control "public, max-age=31536000, immutable";
  }
}
EOF
taskset -c 0 nginx -c "$T/ng/nginx.conf" -p "$T/ng" &
NGINX=$!
taskset -c 0 "$T/bare" -addr 127.0.0.1:$BPORT -dir "$T/www" &
BARE=$!
for _ in $(seq 100); do pgrep -P $NGINX >/dev/null && curl -sf "http://127.0.0.1:$NPORT$(head -1 "$T/paths")" -o /dev/null && break; sleep 0.05; done
cat >"$T/rot.lua" <<EOF
local paths = {}
for l in io.lines("$T/paths") do paths[#paths + 1] = l end
local n = 0
function request()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
EOF
ticks() { # CPU time (user + system, clock ticks) of the given processes
	local t=0 p
	for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
	echo $t
}
load() { # NAME PORT PID...: req/s, and the server's CPU per request (robust to a busy machine)
	local before after
	before=$(ticks "${@:3}")
	taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" -s "$T/rot.lua" "http://127.0.0.1:$2" >"$T/wrk.out"
	after=$(ticks "${@:3}")
	awk -v name="$1" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" '
		/requests in/ {n=$1} /Requests\/sec/ {r=$2} /Non-2xx/ {e=$NF}
		END {printf "%-34s %8.0f req/s %7.1f server CPU us/req%s\n", name, r, t * 1e6 / hz / n, (e ? "  NON-2XX: " e : "")}' "$T/wrk.out"
}
for round in $(seq "$ROUNDS"); do
	echo "== round $round (load $(cut -d' ' -f1 /proc/loadavg))"
	load nginx $NPORT $NGINX $(pgrep -P $NGINX)
	load "bare Go handler, from memory" $BPORT $BARE
	for b in "${BINS[@]}"; do
		start "$b"
		# Warm up: every file used twice, as a node serving a release is.
		taskset -c 1 wrk -t1 -c4 -d1s -s "$T/rot.lua" "http://127.0.0.1:$PORT" >/dev/null
		load "mirrord $(basename "$b")" $PORT $NODE
		stop
	done
done
kill "$NGINX" "$BARE"
