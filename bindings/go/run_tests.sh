#!/usr/bin/env bash
# Tests the Go binding the way a user builds it: installs libzenith into a fresh temporary
# prefix, points cgo at it through pkg-config (`#cgo pkg-config: zenith`) with an rpath, then
# runs gofmt, go vet and `go test -race ./...` in bindings/go and builds and runs examples/go.
# LD_LIBRARY_PATH is unset: the programs must find the installed libzenith.so by themselves.
#
# Called by `make test-go` from the repository root after `make build data`; needs Go (the
# version bindings/go/go.mod names, or GOTOOLCHAIN=auto to fetch it) and the data that
# `make data` writes ($ZENITH_TEST_DATA, default tests/data/generated). Extra arguments go to
# `go test` (e.g. -run TestResume -v). Prints PASS/FAIL per step.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

MAKE="${MAKE:-make}"
export ZENITH_TEST_DATA="${ZENITH_TEST_DATA:-$repo/tests/data/generated}"
major="$(sed -n 's/^version = "\([0-9]*\)\..*"/\1/p' Cargo.toml | head -n 1)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/zenith-go-test.XXXXXX")"
tmp="$(cd "$tmp" && pwd -P)"
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
mkdir -p "$tmp/logs"

failed=0
passed=0
note="$tmp/note"
# run_step NAME FUNCTION [ARGS...]: runs FUNCTION in a subshell with its output in a log;
# prints PASS (with the note the step left in $note) or FAIL and the log.
run_step() {
    local name="$1" fn="$2" log rc
    shift 2
    log="$tmp/logs/${fn}.log"
    : >"$note"
    set +e
    ( set -euo pipefail; "$fn" "$@" ) >"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        if [ -s "$note" ]; then
            echo "PASS: $name: $(cat "$note")"
        else
            echo "PASS: $name"
        fi
    else
        failed=$((failed + 1))
        echo "FAIL: $name (exit $rc); log:"
        sed 's/^/    /' "$log"
    fi
    return 0
}
fail() { echo "error: $*" >&2; exit 1; }
say() { printf '%s' "$*" >"$note"; }

step_preflight() {
    for tool in go pkg-config readelf ldd; do
        command -v "$tool" >/dev/null || fail "$tool not found"
    done
    [ -f "$ZENITH_TEST_DATA/basic.arrow" ] || fail "$ZENITH_TEST_DATA/basic.arrow missing: run 'make data'"
    [ "$(go env CGO_ENABLED)" = 1 ] || fail "cgo is disabled (CGO_ENABLED=0)"
    say "$(go version | cut -d' ' -f3-), data $ZENITH_TEST_DATA"
}

step_install() {
    "$MAKE" --no-print-directory install PREFIX="$prefix" LIBDIR="$prefix/lib" \
        INCLUDEDIR="$prefix/include" DESTDIR=
    say "make install PREFIX=$prefix"
}

# What a user sets to build against the installed copy.
use_prefix() {
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    export CGO_LDFLAGS="-Wl,-rpath,$prefix/lib"
    unset LD_LIBRARY_PATH
}

step_gofmt() {
    local bad
    bad="$(gofmt -l bindings/go examples/go)"
    [ -z "$bad" ] || fail "not gofmt-formatted: $bad"
}

step_vet() {
    use_prefix
    (cd bindings/go && go vet ./...)
    (cd examples/go && go vet ./...)
}

step_test() {
    use_prefix
    (cd bindings/go && go test -race -count=1 "$@" ./...) | tee "$tmp/test.out"
    say "go test -race ./...: $(grep '^ok' "$tmp/test.out" | awk '{ print $2 " (" $3 ")" }' | tr '\n' ' ')"
}

step_example() {
    use_prefix
    local bin="$tmp/stream_batches" resolved
    (cd examples/go && go build -o "$bin" .)
    resolved="$(ldd "$bin" | awk '$1 == "libzenith.so.'"$major"'" { print $3 }')"
    [ "$resolved" = "$prefix/lib/libzenith.so.$major" ] \
        || fail "the example resolves libzenith.so.$major to '$resolved', not $prefix/lib"
    "$bin" "$ZENITH_TEST_DATA/basic.arrow" 1000 | tee "$tmp/example.out"
    grep -q "^10000 rows in 10 batches" "$tmp/example.out" || fail "the example did not read 10000 rows"
    if "$bin" "$ZENITH_TEST_DATA/does-not-exist.arrow" 2>"$tmp/example.err"; then
        fail "the example succeeded on a missing file"
    fi
    cat "$tmp/example.err"
    grep -q "status -4" "$tmp/example.err" || fail "the example did not report ZENITH_ERR_NOT_FOUND"
    say "examples/go built against $prefix/lib and ran on basic.arrow"
}

run_step "preflight" step_preflight
[ "$failed" -eq 0 ] || exit 1
run_step "make install" step_install
[ "$failed" -eq 0 ] || exit 1
run_step "gofmt" step_gofmt
run_step "go vet" step_vet
run_step "go test -race" step_test "$@"
run_step "examples/go" step_example

if [ "$failed" -ne 0 ]; then
    echo "test-go: FAIL ($failed failed, $passed passed)"
    exit 1
fi
echo "test-go: PASS ($passed steps)"
