#!/usr/bin/env bash
# A local S3 server for the remote-dataset tests and benchmark: versitygw (a real S3 server with
# SigV4 checking) over a POSIX backend directory, on 127.0.0.1.
#
#   scripts/s3_server.sh install                  build versitygw into .tools/bin (once)
#   scripts/s3_server.sh start [PORT] [DATA_DIR]  start it (a free port unless given; data under
#                                                 target/s3/data unless given), wait until it
#                                                 answers (30 s deadline), print its port
#   scripts/s3_server.sh stop                     stop the server this script started
#
# Credentials: ZENITH_S3_ACCESS_KEY / ZENITH_S3_SECRET_KEY (default zenith / zenith-secret-key).
# State (pid, port, log) lives in target/s3/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="v1.8.0"
TOOLS="$ROOT/.tools/bin"
BIN="$TOOLS/versitygw"
STATE="$ROOT/target/s3"
ACCESS="${ZENITH_S3_ACCESS_KEY:-zenith}"
SECRET="${ZENITH_S3_SECRET_KEY:-zenith-secret-key}"
READY_DEADLINE_S=30

install() {
    # go install does not stamp a version into the binary: a file next to it says which it is.
    if [[ -x "$BIN" ]] && [[ "$(cat "$BIN.version" 2>/dev/null)" == "$VERSION" ]]; then
        return 0
    fi
    command -v go >/dev/null || { echo "s3_server.sh: go is required to build versitygw" >&2; exit 1; }
    mkdir -p "$TOOLS"
    echo "building versitygw $VERSION into $TOOLS (go install, from the Go module proxy)" >&2
    GOBIN="$TOOLS" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
    echo "$VERSION" >"$BIN.version"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
    install
    local port="${1:-}" data="${2:-$STATE/data}"
    [[ -n "$port" ]] || port="$(free_port)"
    mkdir -p "$STATE" "$data"
    if [[ -f "$STATE/pid" ]] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
        echo "s3_server.sh: already running (pid $(cat "$STATE/pid"), port $(cat "$STATE/port"))" >&2
        exit 1
    fi
    ROOT_ACCESS_KEY="$ACCESS" ROOT_SECRET_KEY="$SECRET" \
        nohup "$BIN" --port "127.0.0.1:$port" posix "$data" >>"$STATE/log" 2>&1 &
    local pid=$!
    echo "$pid" >"$STATE/pid"
    echo "$port" >"$STATE/port"
    # Ready when it answers HTTP (any status: an unsigned request gets 403).
    local deadline=$((SECONDS + READY_DEADLINE_S))
    until python3 - "$port" <<'PY' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=1)
except urllib.error.HTTPError:
    pass
PY
    do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "s3_server.sh: versitygw exited; log:" >&2
            tail -20 "$STATE/log" >&2
            exit 1
        fi
        if (( SECONDS > deadline )); then
            echo "s3_server.sh: versitygw not ready after ${READY_DEADLINE_S}s" >&2
            kill "$pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
    echo "$port"
}

stop() {
    [[ -f "$STATE/pid" ]] || return 0
    local pid
    pid="$(cat "$STATE/pid")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/pid"
}

case "${1:-}" in
    install) install ;;
    start) shift; start "$@" ;;
    stop) stop ;;
    *) echo "usage: $0 install | start [PORT] [DATA_DIR] | stop" >&2; exit 2 ;;
esac
