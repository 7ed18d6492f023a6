#!/usr/bin/env bash
# User-space instructions (and D1 cache misses) per echoed message of one
# echo server, counted by cachegrind while the load client drives it.
#
#   bash benches/echo/cachegrind.sh SERVER [conns] [size] [seconds]
#   SERVER: tulip | streams | tokio | mio        (defaults 10 1024 4)
#
# The server runs under `valgrind --tool=cachegrind --cache-sim=yes`, the
# client (not under valgrind) loads it for the given time, then the server
# is stopped and its totals are divided by the echoes the client counted
# (warm-up and drains included: `echoes` in the client's output). Kernel
# time is not counted: this is the user-space share only. Loopback only;
# bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SERVER=$1 CONNS=${2:-10} SIZE=${3:-1024} SECS=${4:-4}
cargo build --release -q -p benches --bins
cargo build --release -q --example echo_server
BIN=target/release
case "$SERVER" in
    tulip) CMD=("$BIN/examples/echo_server" --forever --mode protocol) ;;
    streams) CMD=("$BIN/examples/echo_server" --forever --mode streams) ;;
    tokio) CMD=("$BIN/echo_server_tokio" --port 0) ;;
    mio) CMD=("$BIN/echo_server_mio" --port 0) ;;
    *) echo "unknown server $SERVER" >&2; exit 2 ;;
esac
OUT=$(mktemp -d)
VPID=
trap '[ -n "$VPID" ] && kill -TERM "$VPID" 2>/dev/null; rm -rf "$OUT"' EXIT
valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file="$OUT/cg.out" \
    "${CMD[@]}" >"$OUT/server.out" 2>"$OUT/valgrind.err" &
VPID=$!
for _ in $(seq 1 400); do
    if grep -q "listening on" "$OUT/server.out"; then break; fi
    sleep 0.05
done
ADDR=$(grep -o "127.0.0.1:[0-9]*" "$OUT/server.out" | head -1)
timeout $((SECS + 60)) "$BIN/echo_load" --addr "$ADDR" --conns "$CONNS" --size "$SIZE" \
    --warmup 0.2 --duration "$SECS" >"$OUT/load.json"
# SIGINT ends tulip's and mio's servers; tokio's ignores it, SIGTERM does.
kill -INT "$VPID" 2>/dev/null || true
sleep 2
kill -TERM "$VPID" 2>/dev/null || true
wait "$VPID" 2>/dev/null || true
VPID=
ECHOES=$(grep -o '"echoes":[0-9]*' "$OUT/load.json" | cut -d: -f2 || true)
if [ -z "$ECHOES" ] || [ "$ECHOES" -eq 0 ]; then
    echo "no echoes counted" >&2
    exit 1
fi
awk -v e="$ECHOES" -v s="$SERVER" -v c="$CONNS" -v z="$SIZE" '
    /I *refs:/ { gsub(",", "", $4); ir = $4 }
    /D1  misses:/ { gsub(",", "", $4); d1 = $4 }
    END { printf "%s %s x %s: %d echoes, %.0f instructions and %.1f D1 misses per message\n",
          s, c, z, e, ir / e, d1 / e }' "$OUT/valgrind.err"
