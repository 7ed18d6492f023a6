#!/usr/bin/env bash
# A/B two (or more) builds of the interleaved runner, process by process.
#
#   bash benches/ab.sh ROUNDS WORKLOAD BIN_A BIN_B [BIN_C ...]
#
# WORKLOAD is a line prefix of the runner's output: create_task_run,
# gather_1e4 or future_round_trip. Each round runs every binary once
# (`BIN 10`: ten interleaved tulip/tokio iterations in one process) and
# keeps that workload's line. Per binary it prints the min / median / max
# of the per-process median tulip/tokio ratios and the fastest tulip and
# tokio times seen. On a shared VM one process's ratio can be 20 % off
# another's for the same binary, which is why single runs decide nothing.
#
# Build a binary per commit with:
#   cargo build --release -p benches --example interleaved
#   cp target/release/examples/interleaved /tmp/il-<name>
set -euo pipefail
ROUNDS=$1
WORKLOAD=$2
shift 2
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for _ in $(seq 1 "$ROUNDS"); do
    for i in $(seq 1 $#); do
        bin=${!i}
        timeout 120 "$bin" 10 | grep "^$WORKLOAD " |
            sed -E 's/.*tulip min +([0-9.]+)ms.*tokio min +([0-9.]+)ms.*ratio min [0-9.]+ med ([0-9.]+).*/\1 \2 \3/' \
                >>"$OUT/$i"
    done
done
for i in $(seq 1 $#); do
    bin=${!i}
    ratios=$(awk '{print $3}' "$OUT/$i" | sort -n |
        awk '{a[NR]=$1} END {printf "min %s med %s max %s", a[1], a[int((NR+1)/2)], a[NR]}')
    tulip=$(awk '{print $1}' "$OUT/$i" | sort -n | head -1)
    tokio=$(awk '{print $2}' "$OUT/$i" | sort -n | head -1)
    echo "$(basename "$bin"): tulip/tokio $ratios | fastest tulip ${tulip} ms, tokio ${tokio} ms"
done
