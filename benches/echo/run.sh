#!/usr/bin/env bash
# TCP echo benchmark over loopback: tulip (protocol and streams modes),
# tokio (current-thread, a task per connection) and a bare mio loop (the
# ceiling), side by side in one run, driven by the closed-loop load client
# benches/src/bin/echo_load.rs. Every server reads up to 256 KiB per call
# (tulip's transport: asyncio's max_size; the streams echo's `read` size;
# the tokio and mio peers' buffers), so no server splits a 100 KiB message
# that one receive could bring whole.
#
#   bash benches/echo/run.sh [seconds-per-point]   (default 3)
#
# The server is pinned to CPU 0 and the client to CPU 1 (taskset). For each
# point it prints msgs/s, p50/p99 latency, the server's CPU time per message
# (utime+stime from /proc, in µs) and its peak RSS (VmHWM). Everything
# listens on 127.0.0.1 only; every run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

DURATION=${1:-3}
WARMUP=1
cargo build --release -q -p benches --bins
cargo build --release -q --example echo_server
BIN=target/release
TICK=$(getconf CLK_TCK)

# `taskset` execs the program, so `$!` below is the server's own pid.
if command -v taskset >/dev/null; then
    PIN0=(taskset -c 0)
    PIN1=(taskset -c 1)
else
    PIN0=()
    PIN1=()
fi

start_server() { # name -> sets PID, PORT
    local out
    out=$(mktemp)
    case "$1" in
        tulip) "${PIN0[@]}" "$BIN/examples/echo_server" --forever --mode protocol >"$out" & ;;
        tulip-streams) "${PIN0[@]}" "$BIN/examples/echo_server" --forever --mode streams >"$out" & ;;
        tokio) "${PIN0[@]}" "$BIN/echo_server_tokio" --port 0 >"$out" & ;;
        mio) "${PIN0[@]}" "$BIN/echo_server_mio" --port 0 >"$out" & ;;
    esac
    PID=$!
    for _ in $(seq 1 100); do
        if grep -q "listening on" "$out"; then break; fi
        sleep 0.05
    done
    PORT=$(grep -o "127.0.0.1:[0-9]*" "$out" | head -1 | cut -d: -f2)
    rm -f "$out"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf "| server | conns | size | msgs/s | p50 µs | p99 µs | server CPU µs/msg | peak RSS KiB |\n"
printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
for point in "10 1024" "10 10240" "10 102400" "100 1024" "1000 1024"; do
    set -- $point
    conns=$1 size=$2
    for server in tulip tulip-streams tokio mio; do
        start_server "$server"
        before=$(cpu_ticks "$PID")
        result=$(timeout $((DURATION + WARMUP + 30)) "${PIN1[@]}" "$BIN/echo_load" --addr "127.0.0.1:$PORT" \
            --conns "$conns" --size "$size" --warmup "$WARMUP" --duration "$DURATION" || echo '{}')
        after=$(cpu_ticks "$PID")
        rss=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        msgs=$(grep -o '"msgs_per_sec":[0-9]*' <<<"$result" | cut -d: -f2)
        p50=$(grep -o '"p50_us":[0-9]*' <<<"$result" | cut -d: -f2)
        p99=$(grep -o '"p99_us":[0-9]*' <<<"$result" | cut -d: -f2)
        total=$(awk -v m="${msgs:-0}" -v d="$DURATION" -v w="$WARMUP" 'BEGIN {print m * (d + w)}')
        cpu=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$total" \
            'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "-" }')
        printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n" "$server" "$conns" "$size" \
            "${msgs:--}" "${p50:--}" "${p99:--}" "$cpu" "$rss"
    done
done
