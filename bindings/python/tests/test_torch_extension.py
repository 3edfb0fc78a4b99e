"""examples/torch_extension: a PyTorch C++ extension linked with libzenith through pkg-config
returns batches as torch tensors via at::fromDLPack without a copy. Built and run where torch,
a C++ compiler and pkg-config are installed (and the repository's examples/ and include/ are
here); skipped otherwise."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch to run this)")
import zenith  # noqa: E402
from conftest import ROWS  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "torch_extension"


@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    if not (EXAMPLE / "setup.py").is_file() or not (REPO / "include" / "zenith.h").is_file():
        pytest.skip("not in a repository checkout (examples/torch_extension, include/zenith.h)")
    for tool in ("pkg-config", "c++"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    root = tmp_path_factory.mktemp("torch_ext")
    # A pkg-config file for the library this process uses (the installed package's copy, or
    # target/release), the way `make install` writes one.
    libdir = root / "lib"
    (libdir / "pkgconfig").mkdir(parents=True)
    library = zenith.library_path().resolve()
    for name in ("libzenith.so", "libzenith.so.0"):  # the link name and the soname
        (libdir / name).symlink_to(library)
    template = (REPO / "pkgconfig" / "zenith.pc.in").read_text()
    pc = (
        template.replace("@PREFIX@", str(root))
        .replace("@LIBDIR@", str(libdir))
        .replace("@INCLUDEDIR@", str(REPO / "include"))
        .replace("@VERSION@", zenith.version())
    )
    (libdir / "pkgconfig" / "zenith.pc").write_text(pc)
    env = dict(os.environ, PKG_CONFIG_PATH=str(libdir / "pkgconfig"))
    build = root / "build"
    result = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--build-lib", str(build), "--build-temp", str(root / "tmp")],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    shutil.rmtree(EXAMPLE / "build", ignore_errors=True)
    sys.path.insert(0, str(build))
    try:
        import zenith_torch_ext
    finally:
        sys.path.remove(str(build))
    return zenith_torch_ext


@pytest.mark.parametrize("legacy", [False, True])
def test_the_extension_yields_tensors_without_copy(extension, data, table, legacy):
    columns = ["id", "value", "embedding", "flag"]
    loader = extension.Loader(str(data["arrow"]), batch_size=1000, shuffle=False, columns=columns, legacy_dlpack=legacy)
    assert extension.zenith_version() == zenith.version()
    assert loader.column_names == columns and len(loader) == 11
    batches = list(loader)  # the extension checks data_ptr() == the DLPack data pointer
    assert len(batches) == 11
    ids = torch.cat([b["id"] for b in batches])
    assert ids.dtype == torch.int64 and ids.tolist() == list(range(ROWS))
    first = batches[0]
    assert first["embedding"].shape == (1000, 4) and first["embedding"].dtype == torch.float32
    assert first["flag"].dtype == torch.bool
    np.testing.assert_array_equal(first["value"].numpy(), table.column("value").to_numpy()[:1000])
    np.testing.assert_array_equal(torch.cat([b["embedding"] for b in batches]).numpy().ravel(), np.arange(ROWS * 4, dtype=np.float32))
    del loader  # tensors outlive the loader and their batches
    assert batches[-1]["id"][-1].item() == ROWS - 1


def test_the_extension_shuffles_and_reports_errors(extension, data):
    loader = extension.Loader(str(data["parquet"]), batch_size=512, shuffle=True, seed=3, columns=["id"])
    epoch0 = torch.cat([b["id"] for b in loader]).tolist()
    loader.set_epoch(1)
    epoch1 = torch.cat([b["id"] for b in loader]).tolist()
    assert sorted(epoch0) == sorted(epoch1) == list(range(ROWS)) and epoch0 != epoch1
    with zenith.Loader(data["parquet"], batch_size=512, seed=3, columns=["id"]) as python:
        assert [i for b in python for i in b.column("id").to_pylist()] == epoch0  # same order as the binding
    with pytest.raises(RuntimeError, match="not found|no such"):
        extension.Loader(str(data["parquet"]) + ".missing")
    with pytest.raises(RuntimeError, match="Utf8|DLPack"):
        next(iter(extension.Loader(str(data["arrow"]), columns=["name"])))
