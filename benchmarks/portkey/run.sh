#!/bin/sh
# Side-by-side: the gateway's added latency beside Portkey's open-source
# gateway (@portkey-ai/gateway 1.15.2 on Node), in front of the same
# stand-in model server, in one run (benchmarks TestGatewaySideBySide).
#
#   benchmarks/portkey/run.sh            # BB_BENCH_N=3000 by default
#   BB_BENCH_N=1000 benchmarks/portkey/run.sh
#
# It installs Portkey here (node_modules/, ignored by git) with npm
# "overrides" pinning @hono/node-server to 1.13.5: as installed today,
# without the pin, every call answers a 500 (Portkey issue 1389). It runs
# two Portkey processes on loopback: stock ("portkey"), and a copy whose
# 25 ms pause before the first streamed chunk is patched out
# ("portkey-np"), to show what the rest of its path costs. Every process
# it starts is stopped on exit. Without node and npm it skips.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "portkey: node and npm are needed; skipping the Portkey side-by-side"
	exit 0
fi
cd "$here"
if [ -f package-lock.json ]; then
	npm ci --no-audit --no-fund --silent
else
	npm install --no-audit --no-fund --silent
fi
build=node_modules/@portkey-ai/gateway/build
# The stream handler waits 25 ms before its first chunk:
# "l?(l=!1,await new Promise((e=>setTimeout(e,25))))". The copy waits 0.
sed 's/setTimeout(e,25)/setTimeout(e,0)/' "$build/start-server.js" >"$build/start-server-nopause.js"
if cmp -s "$build/start-server.js" "$build/start-server-nopause.js"; then
	echo "portkey: the first-chunk pause was not found; not running the patched copy" >&2
	rm "$build/start-server-nopause.js"
fi

port=${BB_PORTKEY_PORT:-18787}
port_np=$((port + 1))
pids=""
cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT INT TERM

NODE_ENV=production node "$build/start-server.js" --port="$port" --headless >"$here/portkey.log" 2>&1 &
pids="$pids $!"
if [ -f "$build/start-server-nopause.js" ]; then
	NODE_ENV=production node "$build/start-server-nopause.js" --port="$port_np" --headless >"$here/portkey-np.log" 2>&1 &
	pids="$pids $!"
	export BB_PORTKEY_NOPAUSE_URL="http://127.0.0.1:$port_np"
fi
# Wait (at most 30 s) until they answer.
for url in "http://127.0.0.1:$port" ${BB_PORTKEY_NOPAUSE_URL:-}; do
	i=0
	until node -e "fetch('$url/').then(()=>process.exit(0),()=>process.exit(1))" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 60 ]; then
			echo "portkey: $url did not start; see $here/portkey*.log" >&2
			exit 1
		fi
		sleep 0.5
	done
done

cd "$here/.."
BB_BENCH=1 BB_PORTKEY_URL="http://127.0.0.1:$port" go test -count=1 -run 'GatewaySideBySide' -v -timeout 30m . "$@"
