# Sourced by cachegrind.sh and dhat.sh: runs one echo server under a
# valgrind tool while the load client (not under valgrind) drives it, then
# stops the server.
#
#   under_valgrind SERVER CONNS SIZE SECS valgrind-options...
#   SERVER: tulip | streams | tokio | mio
#
# Sets OUT (a temporary directory, removed on exit; `@OUT@` in the options
# stands for it, for the tool's output file; valgrind's stderr goes to
# $OUT/valgrind.err) and ECHOES (the echoes the client counted, warm-up
# and drains included). Loopback only; the load is bounded by `timeout`.

under_valgrind() {
    local server=$1 conns=$2 size=$3 secs=$4
    shift 4
    cargo build --release -q -p benches --bins
    cargo build --release -q --example echo_server
    local bin=target/release cmd
    case "$server" in
        tulip) cmd=("$bin/examples/echo_server" --forever --mode protocol) ;;
        streams) cmd=("$bin/examples/echo_server" --forever --mode streams) ;;
        tokio) cmd=("$bin/echo_server_tokio" --port 0) ;;
        mio) cmd=("$bin/echo_server_mio" --port 0) ;;
        *) echo "unknown server $server" >&2; exit 2 ;;
    esac
    OUT=$(mktemp -d)
    VPID=
    trap '[ -n "$VPID" ] && kill -TERM "$VPID" 2>/dev/null; rm -rf "$OUT"' EXIT
    local options=() option
    for option in "$@"; do options+=("${option//@OUT@/$OUT}"); done
    valgrind "${options[@]}" "${cmd[@]}" >"$OUT/server.out" 2>"$OUT/valgrind.err" &
    VPID=$!
    for _ in $(seq 1 400); do
        if grep -q "listening on" "$OUT/server.out"; then break; fi
        sleep 0.05
    done
    local addr
    addr=$(grep -o "127.0.0.1:[0-9]*" "$OUT/server.out" | head -1)
    timeout $((secs + 60)) "$bin/echo_load" --addr "$addr" --conns "$conns" --size "$size" \
        --warmup 0.2 --duration "$secs" >"$OUT/load.json"
    # SIGINT ends tulip's and mio's servers; tokio's ignores it, SIGTERM
    # does. The pause lets valgrind write its output first.
    kill -INT "$VPID" 2>/dev/null || true
    sleep 3
    kill -TERM "$VPID" 2>/dev/null || true
    wait "$VPID" 2>/dev/null || true
    VPID=
    ECHOES=$(grep -o '"echoes":[0-9]*' "$OUT/load.json" | cut -d: -f2 || true)
    if [ -z "$ECHOES" ] || [ "$ECHOES" -eq 0 ]; then
        echo "no echoes counted" >&2
        exit 1
    fi
}
