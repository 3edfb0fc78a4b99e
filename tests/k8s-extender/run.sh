#!/usr/bin/env bash
# The Kubernetes scheduler extender's contract test: builds the zenith-extender binary, then
# runs gofmt, go vet and go test in tests/k8s-extender, whose test starts the binary on
# 127.0.0.1, sends requests built with the official Go types (k8s.io/kube-scheduler/extender/v1,
# k8s.io/api/core/v1) and decodes every answer into them with unknown fields rejected.
#
# Called by `make test-k8s-extender` from the repository root. The Go modules come from the Go
# module proxy (GOPROXY, default proxy.golang.org) on the first run, pinned by go.mod/go.sum;
# go.mod names Go 1.26 (what k8s.io/api v0.37 needs): an older go fetches that toolchain itself
# when GOTOOLCHAIN is auto (the default).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

cargo build --release -p zenith-extender
export ZENITH_EXTENDER_BIN="$repo/target/release/zenith-extender"

cd tests/k8s-extender
unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
    echo "gofmt: these files need formatting: $unformatted" >&2
    exit 1
fi
go mod download
go vet ./...
go test -count=1 "$@" ./...
