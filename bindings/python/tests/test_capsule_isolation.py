"""The binding leaves ``ctypes.pythonapi`` alone: its PyCapsule (and PyMem) calls use private
function pointers, so a library that declares ``ctypes.pythonapi.PyCapsule_*`` its own way (dill,
imported by torch and HF datasets) neither breaks zenith nor is broken by it, whichever is
imported first.

Each case runs in a fresh interpreter (a crash is a failure, not a dead test run) that declares
dill's argtypes before or after importing zenith, then exports through every capsule zenith
makes (DLPack into numpy and torch, versioned and legacy, consumed and not; the Arrow stream,
schema and array capsules into pyarrow, consumed and not), and checks the values, that
``ctypes.pythonapi`` still holds dill's declarations, that no destructor failed, and that every
capsule was released: five more rounds leave no thread behind and do not grow the resident set
with unconsumed copies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from conftest import write_ipc

ROWS = 400_000  # a bool column's DLPack export copies it: 400 kB per unconsumed capsule

SCRIPT = textwrap.dedent(
    """
    import ctypes, datetime, gc, json, os, sys
    from ctypes import c_bool, c_char_p, c_int, c_size_t, c_void_p, py_object

    path, order = sys.argv[1], sys.argv[2]

    # dill/_dill.py's declarations, plus conflicting ones for what zenith used to declare.
    DILL = {
        "PyCapsule_New": ((c_void_p, c_char_p, c_void_p), py_object),
        "PyCapsule_GetPointer": ((py_object, c_char_p), c_void_p),
        "PyCapsule_GetDestructor": ((py_object,), c_void_p),
        "PyCapsule_GetContext": ((py_object,), c_void_p),
        "PyCapsule_GetName": ((py_object,), c_char_p),
        "PyCapsule_IsValid": ((py_object, c_char_p), c_bool),
        "PyCapsule_SetContext": ((py_object, c_void_p), c_int),
        "PyCapsule_SetDestructor": ((py_object, c_void_p), c_int),
        "PyCapsule_SetName": ((py_object, c_char_p), c_int),
        "PyCapsule_SetPointer": ((py_object, c_void_p), c_int),
        "PyMem_RawMalloc": ((py_object,), py_object),
        "PyMem_RawCalloc": ((py_object, py_object), py_object),
        "PyMem_RawFree": ((py_object,), py_object),
        "Py_IncRef": ((c_void_p,), c_int),
    }

    def declare_like_dill():
        for name, (argtypes, restype) in DILL.items():
            fn = getattr(ctypes.pythonapi, name)
            fn.argtypes, fn.restype = argtypes, restype

    def declarations():
        return {name: (tuple(getattr(ctypes.pythonapi, name).argtypes or ()), getattr(ctypes.pythonapi, name).restype)
                for name in DILL}

    def threads():
        return len(os.listdir("/proc/self/task"))

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    import numpy as np
    import pyarrow as pa
    import torch

    report = {}
    if order == "before":
        import dill
        declare_like_dill()
    import zenith
    import zenith.torch
    if order == "after":
        with zenith.Loader(path, batch_size=1000, shuffle=False, columns=["id"], output="dlpack") as loader:
            np.from_dlpack(next(iter(loader))["id"])  # zenith in use before the others declare
        import dill
        declare_like_dill()
    dill_declared = {name: (argtypes, restype) for name, (argtypes, restype) in DILL.items()}

    def exports():
        out = {}
        # DLPack into numpy: versioned (consumed), legacy (consumed), and unconsumed capsules.
        with zenith.Loader(path, batch_size=ROWS, shuffle=False, output="dlpack", num_workers=2) as loader:
            tensors = next(iter(loader))
        ids = np.from_dlpack(tensors["id"])
        class Legacy:
            def __dlpack__(self, stream=None):
                return tensors["flag"].__dlpack__(stream=stream)
            def __dlpack_device__(self):
                return tensors["flag"].__dlpack_device__()
        out["dlpack_ids"] = ids[:5].tolist() + [int(ids.sum())]
        out["dlpack_flags"] = int(np.from_dlpack(Legacy()).sum())
        for _ in range(100):
            tensors["flag"].__dlpack__(max_version=(1, 0))  # a copy each, dropped unconsumed
            tensors["flag"].__dlpack__()  # the legacy capsule, dropped unconsumed
        del tensors, ids
        # The Arrow stream into pyarrow, and unconsumed stream/schema/array capsules.
        loader = zenith.Loader(path, batch_size=50_000, shuffle=False, num_workers=2)
        out["stream_rows"] = pa.RecordBatchReader.from_stream(loader).read_all().num_rows
        out["schema"] = pa.schema(loader).names
        loader.__arrow_c_stream__()
        loader.__arrow_c_schema__()
        with zenith.Loader(path, batch_size=10, shuffle=False) as small:
            batch = small.next_batch()
        out["batch"] = pa.record_batch(batch).column("id").to_pylist()
        batch.__arrow_c_array__()
        streamed = zenith.Loader(path, batch_size=50_000, shuffle=False, num_workers=2).__arrow_c_stream__()
        del streamed  # an unconsumed stream of an open epoch, its loader gone
        loader.close()
        # zenith.torch: torch.from_dlpack on every batch.
        with zenith.torch.DataLoader(path, batch_size=100_000, shuffle=False, columns=["id", "flag"], num_workers=2) as data:
            batches = list(data)
        out["torch"] = [int(sum(b["id"].sum().item() for b in batches)), str(batches[0]["flag"].dtype)]
        del batches
        return out

    report["first"] = exports()  # also starts the pools of numpy, pyarrow and torch
    gc.collect()
    before, threads_before = rss(), threads()
    for _ in range(5):
        report["again"] = exports()
    gc.collect()
    report["rss_growth"] = rss() - before
    report["threads"] = threads() - threads_before
    report["declarations_kept"] = declarations() == dill_declared
    report["dill_declarations"] = {name: [list(map(repr, a)), repr(r)] for name, (a, r) in declarations().items()}
    # dill's own PyCapsule_* calls: pickling a capsule reads its name, pointer, context and
    # destructor; unpickling finds it again by name and checks it with PyCapsule_IsValid.
    capsule = datetime.datetime_CAPI
    report["dill_works"] = dill.loads(dill.dumps(capsule)) is capsule
    print(json.dumps(report))
    """
).replace("ROWS", str(ROWS))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    ids = np.arange(ROWS, dtype=np.int64)
    table = pa.table({"id": ids, "flag": ids % 2 == 0})
    return write_ipc(table, tmp_path_factory.mktemp("isolation") / "isolation.arrow", batch_rows=50_000)


@pytest.mark.parametrize("order", ["before", "after"])
def test_dill_style_declarations_do_not_interfere(dataset, order):
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", SCRIPT, str(dataset), order], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-6000:]
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-6000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {
        "dlpack_ids": [0, 1, 2, 3, 4, ROWS * (ROWS - 1) // 2],
        "dlpack_flags": ROWS // 2,
        "stream_rows": ROWS,
        "schema": ["id", "flag"],
        "batch": list(range(10)),
        "torch": [ROWS * (ROWS - 1) // 2, "torch.bool"],
    }
    assert report["first"] == report["again"] == expected
    assert report["declarations_kept"], f"zenith changed ctypes.pythonapi: {report['dill_declarations']}"
    assert report["dill_works"]
    assert report["threads"] <= 0, f"{report['threads']} threads left behind (a loader or stream not released)"
    # 500 unconsumed bool copies of 400 kB each would be 200 MB.
    assert report["rss_growth"] < 48 << 20, f"RSS grew {report['rss_growth'] / 2**20:.1f} MiB"


def test_importing_zenith_declares_nothing_on_ctypes_pythonapi():
    code = textwrap.dedent(
        """
        import ctypes
        before = set(vars(ctypes.pythonapi))
        import zenith, zenith._capsule
        added = sorted(set(vars(ctypes.pythonapi)) - before)
        print(added)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", "zenith touched ctypes.pythonapi attributes"
