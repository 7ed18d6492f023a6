#!/usr/bin/env bash
# TCP echo benchmark over loopback: tulip (protocol and streams modes),
# tokio (current-thread, a task per connection) and a bare mio loop (the
# ceiling), side by side in one run, driven by the closed-loop load client
# benches/src/bin/echo_load.rs. Every server reads up to 256 KiB per call
# (tulip's transport: asyncio's max_size; the streams echo's `read` size;
# the tokio and mio peers' buffers), so no server splits a 100 KiB message
# that one receive could bring whole.
#
#   bash benches/echo/run.sh [seconds-per-server] [rounds] [window-ms]
#                                              (defaults 10, 1, 250)
#
# For each point (connections x message size) all four servers run at once,
# all pinned to CPU 0, and one load client pinned to CPU 1 loads them in
# turn: windows of `window-ms` go round the servers (one server loaded at a
# time, the others idle), until each has had `seconds-per-server`. Each
# server is measured in every cycle of windows, so when this shared VM slows
# down for a while every server is slowed alike, and the ratios are medians
# of per-cycle ratios. (Running the servers one after the other for seconds
# each, as this script did before, gave the same server 20 % apart from one
# run to the next.)
#
# For each point it prints msgs/s, p50/p99 latency, the server's CPU time per
# message (from /proc/PID/schedstat, read by the client at each of that
# server's windows' start and end, in µs) and its peak RSS (VmHWM), then the
# per-cycle median ratios the targets are about. With several rounds, the
# medians of those ratios over the rounds follow. Everything listens on
# 127.0.0.1 only; every run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

DURATION=${1:-10}
ROUNDS=${2:-1}
WINDOW=${3:-250}
WARMUP=1
cargo build --release -q -p benches --bins
cargo build --release -q --example echo_server
BIN=target/release
SERVERS=(tulip streams tokio mio)
# Pairs reported, as numerator/denominator, and their targets.
PAIRS=(tulip/tokio tulip/mio streams/tulip streams/tokio)
TARGETS=(">= 1.0" ">= 0.97" ">= 0.9" ">= 1.0")

if command -v taskset >/dev/null; then
    PIN0=(taskset -c 0)
    PIN1=(taskset -c 1)
else
    PIN0=()
    PIN1=()
fi

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -f "${ROWS:-}"
}
trap cleanup EXIT

start_server() { # name -> sets PID, PORT
    local out
    out=$(mktemp)
    # `taskset` execs the program, so `$!` is the server's own pid.
    case "$1" in
        tulip) "${PIN0[@]}" "$BIN/examples/echo_server" --forever --mode protocol >"$out" & ;;
        streams) "${PIN0[@]}" "$BIN/examples/echo_server" --forever --mode streams >"$out" & ;;
        tokio) "${PIN0[@]}" "$BIN/echo_server_tokio" --port 0 >"$out" & ;;
        mio) "${PIN0[@]}" "$BIN/echo_server_mio" --port 0 >"$out" & ;;
    esac
    PID=$!
    PIDS+=("$PID") # known to `cleanup` before anything can fail
    for _ in $(seq 1 100); do
        if grep -q "listening on" "$out"; then break; fi
        sleep 0.05
    done
    PORT=$(grep -o "127.0.0.1:[0-9]*" "$out" | head -1 | cut -d: -f2 || true)
    rm -f "$out"
    if [ -z "$PORT" ]; then
        echo "server $1 did not start" >&2
        exit 1
    fi
}

field() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2 || true; }

ROWS=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
    for point in "10 1024" "10 10240" "10 102400" "100 1024" "1000 1024"; do
        set -- $point
        conns=$1 size=$2
        PIDS=()
        declare -A PID_OF=()
        args=()
        for server in "${SERVERS[@]}"; do
            start_server "$server"
            PID_OF[$server]=$PID
            args+=(--target "$server=127.0.0.1:$PORT,$PID")
        done
        per_server=$((DURATION + WARMUP))
        out=$(timeout $((per_server * ${#SERVERS[@]} + 60)) "${PIN1[@]}" "$BIN/echo_load" "${args[@]}" \
            --conns "$conns" --size "$size" --warmup "$WARMUP" --duration "$DURATION" \
            --window-ms "$WINDOW" || echo '{}')
        printf "\n### round %s: %s connections x %s bytes\n\n" "$round" "$conns" "$size"
        printf "| server | msgs/s | p50 µs | p99 µs | server CPU µs/msg | peak RSS KiB |\n"
        printf "|---|---:|---:|---:|---:|---:|\n"
        for server in "${SERVERS[@]}"; do
            line=$(grep "\"server\":\"$server\"" <<<"$out" || true)
            rss=$(awk '/VmHWM/ {print $2}' "/proc/${PID_OF[$server]}/status" 2>/dev/null || true)
            printf "| %s | %s | %s | %s | %s | %s |\n" "$server" "$(field msgs_per_sec <<<"$line")" \
                "$(field p50_us <<<"$line")" "$(field p99_us <<<"$line")" \
                "$(field cpu_us_per_msg <<<"$line")" "$rss"
        done
        printf "\n| pair | rate ratio | target | CPU/msg ratio |\n|---|---:|---|---:|\n"
        for i in "${!PAIRS[@]}"; do
            pair=${PAIRS[$i]}
            rate=$(grep -o "\"$pair\":{\"rate\":[0-9.]*" <<<"$out" | cut -d: -f3 || true)
            cpu=$(grep -o "\"$pair\":{\"rate\":[0-9.]*,\"cpu\":[0-9.]*" <<<"$out" | cut -d: -f4 || true)
            printf "| %s | %s | %s | %s |\n" "$pair" "${rate:--}" "${TARGETS[$i]}" "${cpu:--}"
            if [ -n "${rate:-}" ]; then
                printf "%s %s %s %s %s\n" "$conns" "$size" "$pair" "$rate" "${cpu:--}" >>"$ROWS"
            fi
        done
        for pid in "${PIDS[@]}"; do
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        done
        PIDS=()
        unset PID_OF
    done
done

[ "$ROUNDS" -gt 1 ] || exit 0
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print 0}'; }
printf "\nMedians over %s rounds of the per-cycle median ratios (rate; CPU per message in brackets):\n\n" "$ROUNDS"
printf "| conns | size |"
for i in "${!PAIRS[@]}"; do printf " %s (%s) |" "${PAIRS[$i]}" "${TARGETS[$i]}"; done
printf "\n|---:|---:|"
for _ in "${PAIRS[@]}"; do printf -- "---:|"; done
printf "\n"
for point in "10 1024" "10 10240" "10 102400" "100 1024" "1000 1024"; do
    set -- $point
    printf "| %s | %s |" "$1" "$2"
    for pair in "${PAIRS[@]}"; do
        rate=$(awk -v c="$1" -v s="$2" -v p="$pair" '$1 == c && $2 == s && $3 == p {print $4}' "$ROWS" | median)
        cpu=$(awk -v c="$1" -v s="$2" -v p="$pair" '$1 == c && $2 == s && $3 == p && $5 != "-" {print $5}' "$ROWS" | median)
        printf " %.3f (%.3f) |" "$rate" "$cpu"
    done
    printf "\n"
done
