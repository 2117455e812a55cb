#!/usr/bin/env bash
# ping over HTTP keep-alive with wrk (Debian's wrk), a client of far less
# overhead than http_bench.py's Python threads: latency percentiles at 1 and
# 8 connections against one session of a fresh `kiln serve --http`.
#   bench/http/wrk_ping.sh [KILN] [SECONDS]
set -euo pipefail
kiln=${1:-build/cli/kiln}
seconds=${2:-4}
command -v wrk >/dev/null || { echo "wrk_ping.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }
state=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
"$kiln" --set server.state_dir="$state" --set server.log_level=error serve --http 127.0.0.1:$port 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
session=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$port/mcp" \
  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
  -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}' \
  | awk 'tolower($1) == "mcp-session-id:" {print $2}' | tr -d '\r')
# Request ids must be unique among the session's running requests (a reused
# one is refused with 400): random per request, per wrk thread.
cat > "$state/ping.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Session-Id"] = "$session"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  return wrk.format(nil, nil, nil, '{"jsonrpc":"2.0","id":"' .. math.random(1, 2^31) .. '-' .. math.random(1, 2^31) .. '","method":"ping"}')
end
LUA
for conns in 1 8; do
  echo "== ping, $conns connection(s), ${seconds}s"
  wrk -t$((conns < 2 ? 1 : 2)) -c$conns -d${seconds}s -s "$state/ping.lua" --latency "http://127.0.0.1:$port/mcp" |
    grep -E " 50%| 99%|Requests/sec|Non-2xx"
done
