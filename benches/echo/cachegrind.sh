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
source benches/echo/under_valgrind.sh
under_valgrind "$SERVER" "$CONNS" "$SIZE" "$SECS" \
    --tool=cachegrind --cache-sim=yes --cachegrind-out-file=@OUT@/cg.out
awk -v e="$ECHOES" -v s="$SERVER" -v c="$CONNS" -v z="$SIZE" '
    /I *refs:/ { gsub(",", "", $4); ir = $4 }
    /D1  misses:/ { gsub(",", "", $4); d1 = $4 }
    END { printf "%s %s x %s: %d echoes, %.0f instructions and %.1f D1 misses per message\n",
          s, c, z, e, ir / e, d1 / e }' "$OUT/valgrind.err"
