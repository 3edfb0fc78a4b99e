"""zenith.Engine: batches through WASM plugins and Python stages, in publish order, failures in
their event's place, back-pressure, close with events in flight.

The plugins are real WASM modules: examples/plugins (built by examples/plugins/build.sh, which
this module runs when build/plugins lacks them) and tests/plugins/hostile.c, compiled here with
clang --target=wasm32 and wasm-ld. A missing clang fails these tests (it is installed by
scripts/setup.sh); nothing is skipped.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import threading

import numpy as np
import pyarrow as pa
import pytest

import zenith

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def _need_tools():
    missing = [tool for tool in ("clang", "wasm-ld") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install clang and lld (scripts/setup.sh does)", pytrace=False)


@pytest.fixture(scope="session")
def plugins() -> pathlib.Path:
    """The example plugins: $ZENITH_TEST_PLUGINS, else build/plugins (built here if missing)."""
    folder = pathlib.Path(os.environ.get("ZENITH_TEST_PLUGINS") or ROOT / "build" / "plugins")
    if not all((folder / f"{name}.wasm").exists() for name in ("normalize", "image_resize")):
        _need_tools()
        subprocess.run(["bash", str(ROOT / "examples" / "plugins" / "build.sh"), str(folder)], check=True)
    return folder


@pytest.fixture(scope="session")
def hostile(tmp_path_factory) -> pathlib.Path:
    """tests/plugins/hostile.c as WASM: traps, spins, hogs memory or lies on request."""
    _need_tools()
    out = tmp_path_factory.mktemp("plugins") / "hostile.wasm"
    subprocess.run(
        [
            "clang", "--target=wasm32", "-nostdlib", "-O2", "-mbulk-memory", "-Wall", "-Wextra", "-Werror",
            "-I", str(ROOT / "include"), "-I", str(ROOT / "examples" / "plugins"),
            "-Wl,--no-entry", "-Wl,--strip-all", "-o", str(out), str(HERE / "plugins" / "hostile.c"),
        ],
        check=True,
    )
    return out


def batch_of(x, ident=0) -> pa.RecordBatch:
    x = np.asarray(x, dtype=np.float64)
    return pa.record_batch({"x": pa.array(x), "id": pa.array(np.full(len(x), ident, dtype=np.int64))})


def normalized(x):
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean()) / x.std()


# ---- results ------------------------------------------------------------------------------------


def test_no_stage_is_identity():
    batch = batch_of(np.arange(100.0), 3)
    with zenith.Engine(buffer_size=8) as engine:
        out = engine.process(batch)
    assert isinstance(out, pa.RecordBatch)
    assert out.equals(batch)


def test_normalize_plugin_equals_numpy(plugins):
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=1024)
    with zenith.Engine(buffer_size=4096) as engine:
        engine.load_plugin(plugins / "normalize.wasm", memory=64 << 20, time_limit=1.0)
        out = engine.process(batch_of(x, 9), timeout=30)
    np.testing.assert_allclose(out.column("x").to_numpy(), normalized(x), rtol=1e-12, atol=1e-12)
    # the int column passes through
    assert out.column("id").to_pylist() == [9] * 1024


def test_float32_and_nulls(plugins):
    x = pa.array([1.0, None, 3.0, 5.0], pa.float32())
    with zenith.Engine(stages=[zenith.Plugin(plugins / "normalize.wasm")]) as engine:
        out = engine.process(pa.record_batch({"x": x}), timeout=30)
    valid = np.array([1.0, 3.0, 5.0])
    got = out.column("x")
    assert got.null_count == 1 and not got.is_valid()[1].as_py()
    np.testing.assert_allclose(np.array(got.drop_null(), dtype=np.float64), normalized(valid), rtol=1e-6)


def test_native_stage_and_arrow_protocol_objects():
    class OnlyProtocol:  # not a pyarrow object: only the Arrow PyCapsule protocol
        def __init__(self, batch):
            self.batch = batch

        def __arrow_c_array__(self, requested_schema=None):
            return self.batch.__arrow_c_array__(requested_schema)

    def double(batch):
        return pa.record_batch({"x": pa.compute.multiply(batch.column("x"), 2.0)})

    with zenith.Engine(stages=[zenith.NativeStage(double)]) as engine:
        out = engine.process(OnlyProtocol(batch_of([1.0, 2.0, 3.0])), timeout=30)
    assert out.column("x").to_pylist() == [2.0, 4.0, 6.0]
    assert out.schema.names == ["x"]


def test_stages_chain_in_order(plugins):
    x = np.arange(1.0, 11.0)
    plus_one = zenith.NativeStage(lambda b: pa.record_batch({"x": pa.compute.add(b.column("x"), 1.0)}))
    with zenith.Engine(stages=[zenith.Plugin(plugins / "normalize.wasm"), plus_one]) as engine:
        out = engine.process(batch_of(x), timeout=30)
    np.testing.assert_allclose(out.column("x").to_numpy(), normalized(x) + 1.0, rtol=1e-12)


# ---- order and exactly-once -----------------------------------------------------------------------


def test_order_preserved_across_many_batches_with_several_workers(plugins):
    count = 400
    rng = np.random.default_rng(1)
    inputs = [rng.normal(i, 1 + i % 7, size=2 + (i * 37) % 300) for i in range(count)]
    with zenith.Engine(buffer_size=16, workers=4) as engine:
        engine.load_plugin(plugins / "normalize.wasm")
        sequences = []

        def publisher():
            for i, x in enumerate(inputs):
                sequences.append(engine.publish(batch_of(x, i), timeout=60))

        thread = threading.Thread(target=publisher)
        thread.start()
        outputs = [engine.poll_with_sequence(timeout=60) for _ in range(count)]
        thread.join()
    assert sequences == list(range(count))
    assert [sequence for sequence, _ in outputs] == list(range(count))
    for i, (_, out) in enumerate(outputs):
        assert out.column("id").to_pylist() == [i] * len(inputs[i])
        np.testing.assert_allclose(out.column("x").to_numpy(), normalized(inputs[i]), rtol=1e-9, atol=1e-9)


def test_python_stage_keeps_order_on_several_workers():
    def shift(batch):  # pyarrow releases the GIL in the kernel; workers run it concurrently
        return pa.record_batch({"x": pa.compute.add(batch.column("x"), 0.5), "id": batch.column("id")})

    count = 300
    with zenith.Engine(buffer_size=32, workers=4, stages=[zenith.NativeStage(shift)]) as engine:
        thread = threading.Thread(
            target=lambda: [engine.publish(batch_of([float(i)] * 3, i), timeout=60) for i in range(count)]
        )
        thread.start()
        outputs = [engine.poll_with_sequence(timeout=60) for _ in range(count)]
        thread.join()
    assert [sequence for sequence, _ in outputs] == list(range(count))
    assert [out.column("id")[0].as_py() for _, out in outputs] == list(range(count))
    assert all(out.column("x").to_pylist() == [i + 0.5] * 3 for i, (_, out) in enumerate(outputs))


# ---- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, reason",
    [(-1.0, "trap"), (-2.0, "timeout"), (-3.0, "out of memory"), (-4.0, "7"), (-5.0, "malformed")],
)
def test_hostile_plugin_fails_only_its_event(hostile, code, reason):
    with zenith.Engine(buffer_size=8, workers=2) as engine:
        engine.load_plugin(hostile, memory=4 << 20, time_limit=0.2)
        engine.publish(batch_of([1.0, 2.0], 0), timeout=30)
        engine.publish(batch_of([code, 2.0], 1), timeout=30)
        engine.publish(batch_of([3.0, 4.0], 2), timeout=30)
        assert engine.poll(timeout=30).column("id").to_pylist() == [0, 0]
        with pytest.raises(zenith.EventFailedError) as failed:
            engine.poll(timeout=30)
        assert failed.value.sequence == 1
        assert failed.value.code == zenith.Status.ERR_EVENT_FAILED
        assert reason in failed.value.message and "event 1" in failed.value.message
        # the engine goes on, with the events after and with new ones
        assert engine.poll(timeout=30).column("x").to_pylist() == [3.0, 4.0]
        assert engine.process(batch_of([5.0]), timeout=30).column("x").to_pylist() == [5.0]


def test_native_stage_exception_fails_its_event():
    def picky(batch):
        if batch.column("x")[0].as_py() < 0:
            raise ValueError("negative first value")
        return batch

    with zenith.Engine(stages=[picky]) as engine:
        with pytest.raises(zenith.EventFailedError, match="ValueError: negative first value") as failed:
            engine.process(batch_of([-1.0]), timeout=30)
        assert failed.value.sequence == 0
        assert engine.process(batch_of([1.0]), timeout=30).column("x").to_pylist() == [1.0]


def test_plugin_errors_are_clear(tmp_path):
    with pytest.raises(zenith.NotFoundError):
        zenith.Plugin(tmp_path / "missing.wasm")
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"not wasm at all")
    with pytest.raises(zenith.InvalidArgumentError):
        zenith.Plugin(junk)
    with pytest.raises(zenith.InvalidArgumentError):
        zenith.Engine(buffer_size=0)
    with pytest.raises(zenith.InvalidArgumentError):
        zenith.Engine().publish([1, 2, 3])


def test_process_refuses_with_events_in_flight():
    with zenith.Engine() as engine:
        engine.publish(batch_of([1.0], 1), timeout=5)
        assert engine.in_flight == 1
        with pytest.raises(zenith.InvalidArgumentError, match="not yet polled"):
            engine.process(batch_of([2.0], 2), timeout=5)
        # nothing was taken or lost: the earlier event is still next
        assert engine.poll(timeout=5).column("id").to_pylist() == [1]
        assert engine.in_flight == 0 and engine.published == 1
        assert engine.process(batch_of([2.0], 2), timeout=5).column("id").to_pylist() == [2]


def test_stages_are_fixed_once_started(plugins):
    with zenith.Engine() as engine:
        engine.process(batch_of([1.0]), timeout=30)
        with pytest.raises(zenith.InvalidArgumentError, match="started"):
            engine.load_plugin(plugins / "normalize.wasm")


# ---- back-pressure and closing --------------------------------------------------------------------


def test_back_pressure_times_out_and_loses_nothing():
    with zenith.Engine(buffer_size=2) as engine:
        assert engine.publish(batch_of([0.0], 0), timeout=5) == 0
        assert engine.publish(batch_of([1.0], 1), timeout=5) == 1
        third = batch_of([2.0], 2)
        with pytest.raises(zenith.EngineTimeoutError, match="stayed full") as full:
            engine.publish(third, timeout=0.05)
        assert isinstance(full.value, TimeoutError)
        assert engine.poll(timeout=5).column("id").to_pylist() == [0]
        # the refused batch is still whole, and goes in now
        assert engine.publish(third, timeout=5) == 2
        assert engine.poll(timeout=5).column("id").to_pylist() == [1]
        assert engine.poll(timeout=5).equals(third)
        with pytest.raises(zenith.EngineTimeoutError):
            engine.poll(timeout=0)


def test_close_with_events_in_flight_reports_them():
    engine = zenith.Engine(buffer_size=16)
    for i in range(5):
        engine.publish(batch_of([float(i)], i), timeout=5)
    engine.poll(timeout=5)
    assert engine.close() == 4
    assert engine.released == 4 and engine.closed
    assert engine.close() == 0  # idempotent
    with pytest.raises(zenith.InvalidArgumentError, match="closed"):
        engine.publish(batch_of([1.0]))
    with pytest.raises(zenith.InvalidArgumentError, match="closed"):
        engine.poll(timeout=0)


def test_with_block_releases_in_flight_native_stage_events():
    seen = []

    def record(batch):
        seen.append(batch.column("id")[0].as_py())
        return batch

    with zenith.Engine(buffer_size=8, stages=[record]) as engine:
        for i in range(6):
            engine.publish(batch_of([float(i)], i), timeout=5)
    assert engine.closed and engine.released == 6
    assert sorted(seen) == sorted(set(seen))  # no event ran twice


@pytest.mark.parametrize("timeout", [None, 600])
def test_close_wakes_a_waiting_poll(timeout):
    engine = zenith.Engine()
    engine.process(batch_of([1.0]), timeout=5)  # started
    errors = []

    def waiter():
        try:
            engine.poll(timeout=timeout)  # nothing will come
        except zenith.ZenithError as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    engine.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(errors) == 1 and "closed" in str(errors[0])


# ---- stages in the loader (zenith.Loader / zenith.DataLoader stages=[...]) ----------------------


@pytest.fixture(scope="module")
def floats_file(tmp_path_factory) -> pathlib.Path:
    """2,000 rows: ``x`` (float64) and ``id`` (int64), in IPC batches of 500."""
    rng = np.random.default_rng(5)
    table = pa.table({"x": rng.normal(3.0, 2.0, 2000), "id": np.arange(2000, dtype=np.int64)})
    path = tmp_path_factory.mktemp("loader_stages") / "floats.arrow"
    with pa.ipc.new_file(path, table.schema) as writer:
        writer.write_table(table, max_chunksize=500)
    return path


def test_normalize_plugin_through_the_dataloader_equals_numpy(plugins, floats_file):
    plain = zenith.DataLoader(floats_file, batch_size=128, shuffle=True, seed=4, num_workers=2)
    staged = zenith.DataLoader(
        floats_file, batch_size=128, shuffle=True, seed=4, num_workers=3,
        stages=[zenith.Plugin(plugins / "normalize.wasm")],
    )
    pairs = list(zip(plain, staged, strict=True))
    assert len(pairs) == 16
    for p, s in pairs:
        np.testing.assert_array_equal(p["id"], s["id"])  # the same rows, in the same order
        np.testing.assert_allclose(s["x"], normalized(p["x"]), rtol=0, atol=1e-12)
    assert sorted(np.concatenate([s["id"] for _, s in pairs]).tolist()) == list(range(2000))


def test_python_stage_in_the_loader_runs_on_workers_and_can_change_the_schema(floats_file):
    def tag(batch):
        on_worker = threading.current_thread().name != "MainThread"
        return batch.append_column("on_worker", pa.array([on_worker] * batch.num_rows, type=pa.bool_()))

    with zenith.Loader(floats_file, batch_size=100, shuffle=False, num_workers=2,
                       stages=[zenith.NativeStage(tag)]) as loader:
        assert loader.column_names == ["x", "id", "on_worker"]
        batches = list(loader)
    assert [b.column("id")[0].as_py() for b in batches] == list(range(0, 2000, 100))
    assert all(all(b.column("on_worker").to_pylist()) for b in batches)


def test_a_failing_stage_fails_its_batch_and_the_retry_delivers_it(floats_file):
    failed = []

    def reject_row_700_once(batch):
        if 700 in batch.column("id").to_pylist() and not failed:
            failed.append(True)
            raise ValueError("row 700 is not welcome")
        return batch

    loader = zenith.Loader(floats_file, batch_size=100, shuffle=True, seed=1, num_workers=3,
                           stages=[zenith.NativeStage(reject_row_700_once, name="picky")])
    ids, errors = [], []
    while True:
        try:
            batch = loader.next_batch()
        except zenith.EventFailedError as exc:
            errors.append(exc)
            continue
        if batch is None:
            break
        ids.extend(pa.record_batch(batch).column("id").to_pylist())
    loader.close()
    assert len(errors) == 1
    assert "stage `picky` failed on batch" in str(errors[0])
    assert "ValueError: row 700 is not welcome" in str(errors[0])
    assert sorted(ids) == list(range(2000))


def test_resume_with_stages_continues_exactly(plugins, floats_file):
    def opened(**kw):
        return zenith.Loader(floats_file, batch_size=100, seed=9, num_workers=2,
                             stages=[zenith.Plugin(plugins / "normalize.wasm")], **kw)

    with opened() as loader:
        full = list(loader)
    with opened() as loader:
        it = iter(loader)
        head = [next(it) for _ in range(7)]
        state = loader.state_dict()
    with opened() as loader:
        loader.load_state_dict(state)
        tail = list(loader)
    assert [b.equals(f) for b, f in zip(head + tail, full, strict=True)] == [True] * 20


def test_stages_must_be_stage_objects(floats_file):
    with pytest.raises(zenith.InvalidArgumentError, match="stages must be"):
        zenith.Loader(floats_file, stages=["normalize.wasm"])
    with zenith.Loader(floats_file, batch_size=1000, shuffle=False, stages=[lambda b: b.slice(0, 3)]) as loader:
        assert [b.num_rows for b in loader] == [3, 3]
    stage = zenith.NativeStage(lambda b: b)
    stage.close()
    with pytest.raises(zenith.InvalidArgumentError, match="closed"):
        zenith.Loader(floats_file, stages=[stage])


def test_plugin_config_gives_normalize_a_fixed_mean_and_std(plugins):
    config = np.array([2.0, 4.0], dtype="<f8").tobytes()
    stage = zenith.Plugin(plugins / "normalize.wasm", config=config)
    with zenith.Engine(buffer_size=8, workers=2, stages=[stage]) as engine:
        out = engine.process(batch_of(np.arange(10.0), 7))
    np.testing.assert_array_equal(out.column("x").to_numpy(), (np.arange(10.0) - 2.0) / 4.0)
    assert out.column("id").to_pylist() == [7] * 10
    with pytest.raises(zenith.InvalidArgumentError, match=r"refused the configuration \(3 bytes\) with status 1"):
        zenith.Plugin(plugins / "normalize.wasm", config=b"abc")
    with pytest.raises(zenith.InvalidArgumentError, match="does not export `zn_configure`"):
        zenith.Plugin(plugins / "image_resize.wasm", config=b"x")
    with pytest.raises(zenith.InvalidArgumentError, match="config must be bytes-like"):
        zenith.Plugin(plugins / "normalize.wasm", config="2.0,4.0")


def test_pinned_engine_workers_run_on_their_cpus():
    last = max(os.sched_getaffinity(0))

    def affinity(batch):  # on the worker thread: its own affinity
        return pa.record_batch({"cpu": sorted(os.sched_getaffinity(0))})

    with zenith.Engine(buffer_size=8, workers=2, cpus=[last], stages=[affinity]) as engine:
        outs = [engine.process(batch_of([1.0])) for _ in range(6)]
    assert all(out.column("cpu").to_pylist() == [last] for out in outs)
    with zenith.Engine(workers=1, numa_node=0, stages=[affinity]) as engine:
        assert engine.process(batch_of([1.0])).num_rows >= 1
    with pytest.raises(zenith.InvalidArgumentError, match="NUMA node 999"):
        zenith.Engine(numa_node=999).process(batch_of([1.0]))
    with pytest.raises(zenith.InvalidArgumentError, match="not both"):
        zenith.Engine(cpus=[0], numa_node=0)
