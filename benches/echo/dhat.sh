#!/usr/bin/env bash
# Which heap objects an echo server touches per message: DHAT's bytes read
# and written per allocation site, divided by the echoes the load client
# counted. It shows the per-connection object graph (one block per
# connection) and how much of each object a message goes through.
#
#   bash benches/echo/dhat.sh SERVER [conns] [size] [seconds] [rows]
#   SERVER: tulip | streams | tokio | mio          (defaults 1000 1024 4 15)
#
# The server runs under `valgrind --tool=dhat`, the client (not under
# valgrind) loads it, then the server is stopped. Kernel copies show up as
# reads and writes of the buffers passed to `send`/`recv`, and valgrind
# counts every `recv` as writing the whole buffer it was given, not the
# bytes it got: the rows of receive buffers (the loop's shared 256 KiB
# one, tokio's per-task 256 KiB ones, streams' spare chunks) are that
# artifact, not the program's own accesses. The rows that matter are the
# per-connection objects (`blocks` = connections) and the loop's own.
# Loopback only; bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SERVER=$1 CONNS=${2:-1000} SIZE=${3:-1024} SECS=${4:-4} ROWS=${5:-15}
source benches/echo/under_valgrind.sh
under_valgrind "$SERVER" "$CONNS" "$SIZE" "$SECS" \
    --tool=dhat --dhat-out-file=@OUT@/dhat.json
python3 - "$OUT/dhat.json" "$ECHOES" "$ROWS" "$SERVER $CONNS x $SIZE" <<'PY'
import json, re, sys

path, echoes, rows, label = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
data = json.load(open(path))
frames = data["ftbl"]
# Frames of the allocator itself, skipped to find where an object is made.
plumbing = re.compile(r"alloc/src/|core/src/|vgpreload|/rc\.rs|/sync\.rs|boxed\.rs|raw_vec")


def site(pp):
    for index in pp["fs"]:
        frame = frames[index]
        if plumbing.search(frame):
            continue
        # "0x…: function (file:line)", or "0x…: function (in binary)"
        # without debug info.
        m = re.search(r"0x[0-9A-F]+: (.*) \((.*?)\)$", frame)
        if not m:
            return frame[:90]
        where = m.group(2)
        where = "" if where.startswith("in ") else f" ({where.split('/')[-1]})"
        return m.group(1)[:80] + where
    return "?"


table = []
for pp in data["pps"]:
    touched = (pp.get("rb", 0) + pp.get("wb", 0)) / echoes
    blocks = max(pp["tbk"], 1)
    table.append((touched, pp["tb"] / blocks, pp["tbk"], site(pp)))
table.sort(reverse=True)
print(f"{label}: {echoes} echoes; bytes read + written per message, by allocation site")
print(f"{'B/msg':>8} {'block B':>8} {'blocks':>8}  site")
for touched, size, blocks, where in table[:rows]:
    print(f"{touched:8.1f} {size:8.0f} {blocks:8d}  {where}")
PY
