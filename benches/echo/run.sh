#!/usr/bin/env bash
# TCP echo benchmark over loopback: tulip (protocol and streams modes),
# tokio (current-thread, a task per connection) and a bare mio loop (the
# ceiling), side by side in one run, driven by the closed-loop load client
# benches/src/bin/echo_load.rs. Every server reads up to 256 KiB per call
# (tulip's transport: asyncio's max_size; the streams echo's `read` size;
# the tokio and mio peers' buffers), so no server splits a 100 KiB message
# that one receive could bring whole.
#
#   bash benches/echo/run.sh [seconds-per-point] [rounds]   (defaults 3, 1)
#
# With several rounds every round runs every point and server again
# (servers alternate within a point), and a summary of medians and the
# tulip ratios against the targets follows the per-run rows: on a shared
# VM one run of the same server can be 20 % off the next.
#
# The server is pinned to CPU 0 and the client to CPU 1 (taskset). For each
# point it prints msgs/s, p50/p99 latency, the server's CPU time per message
# (utime+stime from /proc, in µs) and its peak RSS (VmHWM). Everything
# listens on 127.0.0.1 only; every run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

DURATION=${1:-3}
ROUNDS=${2:-1}
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

ROWS=$(mktemp)
trap 'rm -f "$ROWS"' EXIT
printf "| round | server | conns | size | msgs/s | p50 µs | p99 µs | server CPU µs/msg | peak RSS KiB |\n"
printf "|---:|---|---:|---:|---:|---:|---:|---:|---:|\n"
for round in $(seq 1 "$ROUNDS"); do
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
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$round" "$server" "$conns" "$size" \
                "${msgs:--}" "${p50:--}" "${p99:--}" "$cpu" "$rss"
            if [ -n "${msgs:-}" ]; then
                printf "%s %s %s %s\n" "$conns" "$size" "$server" "$msgs" >>"$ROWS"
            fi
        done
    done
done

[ "$ROUNDS" -gt 1 ] || exit 0
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print 0}'; }
printf "\nMedians of %s rounds (msgs/s) and ratios (targets: tulip/tokio >= 1.0, tulip/mio >= 0.97,\n" "$ROUNDS"
printf "streams/tulip >= 0.9, streams/tokio >= 1.0):\n\n"
printf "| conns | size | tulip | streams | tokio | mio | tulip/tokio | tulip/mio | streams/tulip | streams/tokio |\n"
printf "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
for point in "10 1024" "10 10240" "10 102400" "100 1024" "1000 1024"; do
    set -- $point
    for server in tulip tulip-streams tokio mio; do
        printf -v "m_${server//-/_}" "%s" "$(awk -v c="$1" -v s="$2" -v n="$server" '$1 == c && $2 == s && $3 == n {print $4}' "$ROWS" | median)"
    done
    awk -v c="$1" -v s="$2" -v t="$m_tulip" -v st="$m_tulip_streams" -v k="$m_tokio" -v m="$m_mio" 'BEGIN {
        printf "| %s | %s | %d | %d | %d | %d | %.2f | %.2f | %.2f | %.2f |\n", c, s, t, st, k, m,
            (k ? t / k : 0), (m ? t / m : 0), (t ? st / t : 0), (k ? st / k : 0)
    }'
done
