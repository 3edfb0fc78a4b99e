#!/usr/bin/env bash
# The local S3 server (versitygw) of scripts/object_servers.sh, by its old name:
#
#   scripts/s3_server.sh install                  build versitygw into .tools/bin (once)
#   scripts/s3_server.sh start [PORT] [DATA_DIR]  start it, print its port (data under target/s3/data)
#   scripts/s3_server.sh stop                     stop it
#
# Credentials: ZENITH_S3_ACCESS_KEY / ZENITH_S3_SECRET_KEY (default zenith / zenith-secret-key).
set -euo pipefail
servers="$(dirname "${BASH_SOURCE[0]}")/object_servers.sh"
case "${1:-}" in
    install) exec "$servers" install s3 ;;
    start) shift; exec "$servers" start s3 "$@" ;;
    stop) exec "$servers" stop s3 ;;
    *) echo "usage: $0 install | start [PORT] [DATA_DIR] | stop" >&2; exit 2 ;;
esac
