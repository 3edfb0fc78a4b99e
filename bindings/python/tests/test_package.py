"""The package: versions, where the library comes from, no compiled extension."""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import subprocess
import sys

import pytest

import zenith


def run(code: str, **env) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter with this environment plus `env` (which may name
    another ZENITH_LIBRARY)."""
    environment = dict(os.environ)
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)


def test_version():
    assert zenith.version().count(".") == 2
    try:
        assert importlib.metadata.version("libzenith") == zenith.version() == zenith.__version__
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("zenith runs from a source tree, not an installed package")


def test_pure_python_package():
    package = pathlib.Path(zenith.__file__).parent
    assert not [p.name for p in package.iterdir() if p.suffix in (".pyd",) or ".cpython-" in p.name]


@pytest.mark.skipif(not os.environ.get("ZENITH_EXPECT_BUNDLED"), reason="only for an installed package (make test-python-binding)")
def test_the_installed_package_uses_its_bundled_library():
    package = pathlib.Path(zenith.__file__).resolve().parent
    assert "site-packages" in str(package), package
    assert zenith.library_path() == package / "libzenith.so"


def test_zenith_library_overrides(tmp_path):
    path = zenith.library_path()
    shown = run("import zenith; print(zenith.library_path())", ZENITH_LIBRARY=str(path.parent))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == str(path.parent / "libzenith.so")

    missing = tmp_path / "libzenith.so"
    failed = run("import zenith; zenith.version()", ZENITH_LIBRARY=str(missing))
    assert failed.returncode != 0
    assert "ImportError" in failed.stderr and str(missing) in failed.stderr


def test_import_does_not_need_pyarrow_numpy_or_torch():
    code = (
        "import sys\n"
        "for name in ('pyarrow', 'numpy', 'torch'): sys.modules[name] = None\n"
        "import zenith\n"
        "print(zenith.version())\n"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == zenith.version()


def test_fork_disowns_loaders(data):
    """A forked child never frees (or uses) its parent's loader: its threads are the parent's."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    with zenith.Loader(data["arrow"], batch_size=1000, num_workers=2) as loader:
        next(iter(loader))
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                try:
                    len(loader)
                except zenith.InvalidArgumentError as e:
                    code = 0 if "fork" in str(e) else 2
                loader.close()
                del loader
                with zenith.Loader(data["arrow"], batch_size=1000) as own:
                    code = code or (0 if len(list(own)) == 11 else 3)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert sum(b.num_rows for b in loader) > 0  # the parent's loader goes on
