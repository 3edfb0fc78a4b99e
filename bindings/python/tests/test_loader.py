"""zenith.Loader: content equal to pyarrow's reading, order, epochs, shards, resume, stats."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest

import zenith
from conftest import ROWS, pyarrow_read


def read_all(loader) -> pa.Table:
    batches = list(loader)
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    return pa.Table.from_batches(batches, schema=loader.schema)


def ids(loader) -> list:
    return [b.column("id").to_pylist() for b in loader]


# ---- content -----------------------------------------------------------------------------------


CASES = [("arrow", 1)] + [  # one-row batches (10,007 of them) on one format
    (fmt, batch_size) for fmt in ("arrow", "arrows", "parquet", "shards") for batch_size in (777, 1000, 4096, 20_000)
]


@pytest.mark.parametrize("fmt, batch_size", CASES)
def test_batches_equal_pyarrows_reading(data, fmt, batch_size):
    expected = pyarrow_read(data[fmt])
    with zenith.Loader(data[fmt], batch_size=batch_size, shuffle=False) as loader:
        assert loader.schema.equals(expected.schema)
        assert len(loader) == -(-ROWS // batch_size)
        batches = list(loader)
    assert [b.num_rows for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    got = pa.Table.from_batches(batches)
    assert got.equals(expected), f"{fmt}, batch_size {batch_size}"


def test_csv_values_equal_pyarrows_reading(data):
    expected = pyarrow_read(data["csv"])
    with zenith.Loader(data["csv"], batch_size=999, shuffle=False) as loader:
        got = read_all(loader)
    assert got.column_names == expected.column_names
    for name in got.column_names:
        assert got.column(name).to_pylist() == expected.column(name).to_pylist()


def test_columns_projects_in_the_given_order(data, table):
    with zenith.Loader(data["parquet"], batch_size=500, shuffle=False, columns=["value", "id"]) as loader:
        assert loader.schema.names == ["value", "id"]
        assert loader.column_names == ["value", "id"]
        got = read_all(loader)
    assert got.equals(table.select(["value", "id"]))


def test_drop_last(data):
    with zenith.Loader(data["arrow"], batch_size=1000, shuffle=False, drop_last=True) as loader:
        assert len(loader) == ROWS // 1000
        assert [b.num_rows for b in loader] == [1000] * (ROWS // 1000)


# ---- order -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, "global", "block"])
def test_a_shuffled_epoch_is_a_permutation(data, shuffle):
    with zenith.Loader(data["parquet"], batch_size=1000, shuffle=shuffle, seed=3) as loader:
        order = [i for batch in ids(loader) for i in batch]
        assert loader.stats()["shuffle"] in ("global", "block")
    assert sorted(order) == list(range(ROWS))
    assert order != list(range(ROWS))


def test_order_depends_on_seed_and_epoch_not_workers(data):
    def order(seed, workers, epoch=0):
        with zenith.Loader(data["arrow"], batch_size=512, seed=seed, num_workers=workers) as loader:
            loader.set_epoch(epoch)
            return ids(loader)

    reference = order(1, 0)
    assert order(1, 1) == reference
    assert order(1, 4) == reference
    assert order(2, 2) != reference
    assert order(1, 2, epoch=1) != reference


def test_shards_dropping_the_remainder_are_disjoint_equal_and_cover_all_but_it(data):
    world = 3
    seen = []
    for rank in range(world):
        with zenith.Loader(
            data["parquet"], batch_size=256, seed=5, rank=rank, world_size=world, drop_remainder=True
        ) as loader:
            got = [i for batch in ids(loader) for i in batch]
            assert len(loader) == -(-(ROWS // world) // 256)
        assert len(got) == ROWS // world
        seen.append(set(got))
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and not (seen[0] & seen[2])
    assert len(set.union(*seen)) == ROWS - ROWS % world


def test_rank_and_world_size_from_the_environment(data, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with zenith.Loader(data["arrow"], batch_size=1000, seed=1) as from_env:
        env_ids = ids(from_env)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    with zenith.Loader(data["arrow"], batch_size=1000, seed=1, rank=1, world_size=2) as explicit:
        assert ids(explicit) == env_ids


# ---- epochs and passes -------------------------------------------------------------------------


def test_each_new_pass_starts_the_next_epoch(data):
    with zenith.Loader(data["arrow"], batch_size=1000, seed=9) as loader:
        first, second, third = ids(loader), ids(loader), ids(loader)
        assert loader.epoch == 2
    with zenith.Loader(data["arrow"], batch_size=1000, seed=9) as explicit:
        by_epoch = []
        for epoch in range(3):
            explicit.set_epoch(epoch)
            by_epoch.append(ids(explicit))
    assert [first, second, third] == by_epoch
    assert first != second != third


def test_set_epoch_before_a_pass_picks_that_epoch(data):
    with zenith.Loader(data["arrow"], batch_size=1000, seed=9) as loader:
        loader.set_epoch(5)
        five = ids(loader)
        loader.set_epoch(5)  # replay
        assert ids(loader) == five
        assert ids(loader) != five  # then 6
        assert loader.epoch == 6


def test_a_pass_that_took_nothing_does_not_use_up_an_epoch(data):
    with zenith.Loader(data["arrow"], batch_size=1000, seed=9) as loader:
        iter(loader)  # started, never advanced
        iter(loader)
        assert loader.epoch == 0
        assert len(ids(loader)) == len(loader)
        assert loader.epoch == 0


def test_an_abandoned_pass_is_followed_by_the_next_epoch(data):
    with zenith.Loader(data["arrow"], batch_size=1000, seed=9) as loader:
        for _ in loader:
            break
        assert len(ids(loader)) == len(loader)
        assert loader.epoch == 1


def test_a_superseded_iterator_raises(data):
    with zenith.Loader(data["arrow"], batch_size=1000) as loader:
        old = iter(loader)
        next(old)
        loader.set_epoch(3)
        with pytest.raises(RuntimeError, match="superseded"):
            next(old)


# ---- resume ------------------------------------------------------------------------------------


@pytest.mark.parametrize("taken", [0, 1, 4, 10])
@pytest.mark.parametrize("shuffle", [False, True, "block"])
def test_state_dict_resumes_exactly(data, taken, shuffle):
    options = dict(batch_size=1000, shuffle=shuffle, seed=11)
    with zenith.Loader(data["parquet"], num_workers=2, **options) as loader:
        loader.set_epoch(2)
        it = iter(loader)
        head = [next(it).column("id").to_pylist() for _ in range(taken)]
        state = loader.state_dict()
        rest = [b.column("id").to_pylist() for b in it]
        following = ids(loader)  # epoch 3
    assert state["version"] == 1 and state["epoch"] == 2 and state["batches_delivered"] == taken
    assert isinstance(state["token"], bytes) and len(state["token"]) <= 128
    assert len(head) + len(rest) == 11

    with zenith.Loader(data["parquet"], num_workers=0, **options) as resumed:  # other workers
        resumed.load_state_dict(state)
        assert resumed.epoch == 2
        resumed.set_epoch(2)  # a training loop's set_epoch(start_epoch) keeps the position
        assert ids(resumed) == rest
        assert ids(resumed) == following


def test_state_saved_after_an_epoch_resumes_at_the_next(data):
    with zenith.Loader(data["arrow"], batch_size=2000, seed=1) as loader:
        ids(loader)
        state = loader.state_dict()
        assert state["batches_delivered"] == len(loader)
        following = ids(loader)
    with zenith.Loader(data["arrow"], batch_size=2000, seed=1) as resumed:
        resumed.load_state_dict(state)
        assert resumed.epoch == 1
        assert ids(resumed) == following


def test_state_of_another_loader_is_refused_and_changes_nothing(data, tmp_path):
    with zenith.Loader(data["arrow"], batch_size=1000, seed=1) as loader:
        state = loader.state_dict()
    with zenith.Loader(data["arrow"], batch_size=1000, seed=2) as other:
        expected = ids(other)
        other.set_epoch(0)
        with pytest.raises(zenith.InvalidArgumentError, match="seed"):
            other.load_state_dict(state)
        with pytest.raises(ValueError):
            other.load_state_dict({"version": 1, "epoch": 0, "batches_delivered": 0, "token": b"nope"})
        with pytest.raises(ValueError):
            other.load_state_dict({"token": state["token"]})
        assert ids(other) == expected
    with zenith.Loader(data["parquet"], batch_size=1000, seed=1) as other_data:
        with pytest.raises(zenith.InvalidArgumentError, match="another dataset"):
            other_data.load_state_dict(state)


# ---- stats, len, schema, lifetime ----------------------------------------------------------


def test_stats(data):
    with zenith.Loader(data["parquet"], batch_size=1000, shuffle="global", num_workers=2, prefetch=3) as loader:
        list(loader)
        stats = loader.stats()
    assert stats["rows"] == ROWS and stats["batches"] == 11 and stats["bytes"] > 0
    assert stats["batches_per_epoch"] == 11 and stats["epoch"] == 0
    assert stats["num_workers"] == 2 and stats["shuffle"] == "global"
    assert stats["time_to_first_batch_ns"] > 0 and stats["chunks_decoded"] >= 5
    assert set(stats) >= {"consumer_wait_ns", "worker_busy_ns", "decode_ns", "queue_depth"}


def test_close_is_idempotent_and_with_closes(data):
    with zenith.Loader(data["arrow"], batch_size=1000) as loader:
        batch = next(iter(loader))
    assert loader.closed
    loader.close()
    assert batch.column("id").to_pylist()[:1] is not None  # batches outlive the loader
    for use in (lambda: len(loader), loader.stats, loader.state_dict, lambda: list(loader), lambda: loader.set_epoch(1)):
        with pytest.raises(zenith.InvalidArgumentError, match="closed"):
            use()


def test_closing_during_iteration_stops_the_iterator(data):
    loader = zenith.Loader(data["arrow"], batch_size=1000)
    it = iter(loader)
    next(it)
    loader.close()
    with pytest.raises(zenith.InvalidArgumentError, match="closed"):
        next(it)


def test_batches_are_valid_after_close_and_collection(data, table):
    loader = zenith.Loader(data["arrow"], batch_size=3000, shuffle=False)
    batches = list(loader)
    loader.close()
    del loader
    import gc

    gc.collect()
    assert pa.Table.from_batches(batches).equals(table)


def test_calls_from_two_threads_are_serialised(data):
    with zenith.Loader(data["parquet"], batch_size=100, seed=4, num_workers=2) as loader:
        stop = threading.Event()
        errors = []

        def poll():
            while not stop.is_set():
                try:
                    loader.stats()
                    len(loader)
                except Exception as e:  # pragma: no cover - reported below
                    errors.append(e)

        thread = threading.Thread(target=poll)
        thread.start()
        total = sum(b.num_rows for b in loader)
        stop.set()
        thread.join()
    assert total == ROWS and not errors


def test_a_loader_is_not_picklable(data):
    import pickle

    with zenith.Loader(data["arrow"]) as loader, pytest.raises(TypeError):
        pickle.dumps(loader)


def test_repr(data):
    with zenith.Loader(data["arrow"], batch_size=1000) as loader:
        assert "batch_size=1000" in repr(loader) and "batches_per_epoch=11" in repr(loader)
    assert "closed" in repr(loader)


def test_next_batch_gives_owned_batches(data, table):
    with zenith.Loader(data["arrow"], batch_size=4000, shuffle=False) as loader:
        got = []
        while (batch := loader.next_batch()) is not None:
            assert isinstance(batch, zenith.Batch) and len(batch) == batch.num_rows
            got.append(batch.to_pyarrow())
            batch.close()
    assert pa.Table.from_batches(got).equals(table)
    assert np.array_equal(np.concatenate([b.column("id").to_numpy() for b in got]), np.arange(ROWS))
