#!/usr/bin/env bash
# Local object-store servers for the remote-dataset tests and benchmark, each a real server on
# 127.0.0.1 over a backend directory:
#
#   s3       versitygw (S3 with SigV4 checking), built with `go install` from the Go module proxy
#   azurite  Azurite's Blob service (Azure Blob Storage; shared-key checking), from npm
#   gcs      fake-gcs-server (Google Cloud Storage's JSON and XML APIs), `go install`
#   webdav   WsgiDAV (HTTP with Range, ETag/If-Match and WebDAV PROPFIND listing), from .venv
#            (tests/python/requirements.txt)
#
#   scripts/object_servers.sh install [NAME...]            install them into .tools (once; all
#                                                           when no NAME)
#   scripts/object_servers.sh start NAME [PORT] [DATA_DIR] start one (a free port unless given;
#                                                           data under target/NAME/data unless
#                                                           given), wait until it answers HTTP
#                                                           (60 s deadline), print its port
#   scripts/object_servers.sh stop NAME                    stop the one this script started
#
# S3 credentials: ZENITH_S3_ACCESS_KEY / ZENITH_S3_SECRET_KEY (default zenith / zenith-secret-key).
# Azurite takes its well-known development account (devstoreaccount1); fake-gcs-server and the
# WebDAV server take anonymous requests. State (pid, port, log) lives in target/NAME/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VERSITYGW_VERSION="v1.8.0"
FAKE_GCS_VERSION="v1.56.1"
AZURITE_VERSION="3.35.0"
ACCESS="${ZENITH_S3_ACCESS_KEY:-zenith}"
SECRET="${ZENITH_S3_SECRET_KEY:-zenith-secret-key}"
READY_DEADLINE_S=60
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

say() { echo "object_servers.sh: $*" >&2; }

# go_tool BIN MODULE VERSION: `go install MODULE@VERSION` into .tools/bin unless that version is
# there (go install stamps no version into the binary: a file next to it says which it is).
go_tool() {
    local bin="$TOOLS/bin/$1" module="$2" version="$3"
    if [[ -x "$bin" ]] && [[ "$(cat "$bin.version" 2>/dev/null)" == "$version" ]]; then
        return 0
    fi
    command -v go >/dev/null || { say "go is required to build $1"; exit 1; }
    mkdir -p "$TOOLS/bin"
    say "building $1 $version into $TOOLS/bin (go install, from the Go module proxy)"
    GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "$module@$version"
    echo "$version" >"$bin.version"
}

install_one() {
    case "$1" in
        s3) go_tool versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION" ;;
        gcs) go_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION" ;;
        azurite)
            local dir="$TOOLS/node"
            if [[ -x "$dir/node_modules/.bin/azurite-blob" ]] \
                && [[ "$(cat "$dir/azurite.version" 2>/dev/null)" == "$AZURITE_VERSION" ]]; then
                return 0
            fi
            command -v npm >/dev/null || { say "npm is required for Azurite (make setup installs it)"; exit 1; }
            mkdir -p "$dir"
            say "installing azurite $AZURITE_VERSION into $dir (npm)"
            npm install --silent --no-audit --no-fund --prefix "$dir" "azurite@$AZURITE_VERSION" >&2
            echo "$AZURITE_VERSION" >"$dir/azurite.version"
            ;;
        webdav)
            [[ -x "$(dirname "$PYTHON")/wsgidav" ]] \
                || { say "wsgidav is not in $(dirname "$PYTHON") (make setup installs tests/python/requirements.txt)"; exit 1; }
            ;;
        *) say "unknown server $1 (s3, azurite, gcs, webdav)"; exit 2 ;;
    esac
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# launch NAME PORT DATA: starts the server in the background (its output to the log).
launch() {
    local name="$1" port="$2" data="$3" log="$ROOT/target/$1/log"
    case "$name" in
        s3)
            ROOT_ACCESS_KEY="$ACCESS" ROOT_SECRET_KEY="$SECRET" \
                nohup "$TOOLS/bin/versitygw" --port "127.0.0.1:$port" posix "$data" >>"$log" 2>&1 &
            ;;
        azurite)
            nohup node "$TOOLS/node/node_modules/azurite/dist/src/blob/main.js" \
                --blobHost 127.0.0.1 --blobPort "$port" --location "$data" \
                --skipApiVersionCheck --disableProductStyleUrl --disableTelemetry --silent >>"$log" 2>&1 &
            ;;
        gcs)
            nohup "$TOOLS/bin/fake-gcs-server" -scheme http -host 127.0.0.1 -port "$port" \
                -public-host "127.0.0.1:$port" -backend filesystem -filesystem-root "$data" \
                -log-level warn >>"$log" 2>&1 &
            ;;
        webdav)
            nohup "$(dirname "$PYTHON")/wsgidav" --host 127.0.0.1 --port "$port" --root "$data" \
                --auth anonymous --no-config -q >>"$log" 2>&1 &
            ;;
    esac
    echo $!
}

start() {
    local name="${1:?start NAME [PORT] [DATA_DIR]}" port="${2:-}" state="$ROOT/target/$1"
    local data="${3:-$state/data}"
    install_one "$name"
    [[ -n "$port" ]] || port="$(free_port)"
    mkdir -p "$state" "$data"
    if [[ -f "$state/pid" ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
        say "$name already running (pid $(cat "$state/pid"), port $(cat "$state/port"))"
        exit 1
    fi
    local pid
    pid="$(launch "$name" "$port" "$data")"
    echo "$pid" >"$state/pid"
    echo "$port" >"$state/port"
    # Ready when it answers HTTP (any status: an unsigned request may get 403).
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
            say "$name exited; log:"
            tail -20 "$state/log" >&2
            exit 1
        fi
        if (( SECONDS > deadline )); then
            say "$name not ready after ${READY_DEADLINE_S}s"
            kill "$pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
    echo "$port"
}

stop() {
    local state="$ROOT/target/${1:?stop NAME}"
    [[ -f "$state/pid" ]] || return 0
    local pid
    pid="$(cat "$state/pid")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$state/pid"
}

case "${1:-}" in
    install)
        shift
        (($#)) || set -- s3 azurite gcs webdav
        for name in "$@"; do install_one "$name"; done
        ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) echo "usage: $0 install [NAME...] | start NAME [PORT] [DATA_DIR] | stop NAME" >&2; exit 2 ;;
esac
