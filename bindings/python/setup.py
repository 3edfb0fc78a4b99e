"""Builds libzenith.so with cargo and bundles it in the `zenith` package.

`pip install ./bindings/python` runs `cargo build --release -p libzenith` in the repository that
holds this file (or in $ZENITH_SOURCE_DIR), copies the library into the package, and marks the
wheel as platform-specific (py3-none-<platform>: the package is pure ctypes, so any CPython 3
on that platform can use it). The copy is stripped of debug info when `strip` is available
($ZENITH_NO_STRIP=1 keeps it). Set $CARGO to use another cargo.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1 (the wheel package had it)
    from wheel.bdist_wheel import bdist_wheel

HERE = pathlib.Path(__file__).resolve().parent
LIBRARY = "libzenith.so"


def source_dir() -> pathlib.Path:
    root = pathlib.Path(os.environ.get("ZENITH_SOURCE_DIR") or HERE.parents[1])
    if not (root / "libzenith" / "ffi" / "Cargo.toml").is_file():
        raise SystemExit(
            f"zenith: no libzenith sources at {root}; build from the repository checkout or set "
            "ZENITH_SOURCE_DIR to it"
        )
    return root


def version() -> str:
    text = (source_dir() / "Cargo.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise SystemExit("zenith: no version in the workspace Cargo.toml")
    return match.group(1)


def cargo_build() -> pathlib.Path:
    """Runs cargo and returns the path of the cdylib it built (read from cargo's messages, so
    CARGO_TARGET_DIR and the like are honoured)."""
    cargo = os.environ.get("CARGO", "cargo")
    if shutil.which(cargo) is None:
        raise SystemExit("zenith: cargo not found; install Rust (https://rustup.rs) to build libzenith")
    command = [cargo, "build", "--release", "-p", "libzenith", "--message-format=json-render-diagnostics"]
    print("zenith: " + " ".join(command), flush=True)
    result = subprocess.run(command, cwd=source_dir(), stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"zenith: cargo build failed (exit {result.returncode})")
    for line in result.stdout.splitlines():
        message = json.loads(line) if line.startswith("{") else {}
        if message.get("reason") == "compiler-artifact" and "cdylib" in message.get("target", {}).get("kind", []):
            for filename in message.get("filenames", []):
                if filename.endswith(LIBRARY):
                    return pathlib.Path(filename)
    raise SystemExit(f"zenith: cargo built no {LIBRARY}")


class BuildPy(build_py):
    def run(self):
        super().run()
        built = cargo_build()
        target = pathlib.Path(self.build_lib) / "zenith" / LIBRARY
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)
        target.chmod(0o755)
        if not os.environ.get("ZENITH_NO_STRIP") and shutil.which("strip"):
            subprocess.run(["strip", "--strip-debug", str(target)], check=True)


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False  # it carries a native library

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(version=version(), cmdclass={"build_py": BuildPy, "bdist_wheel": PlatformWheel})
