"""Builds libzenith.so and the `zenith` command with cargo and bundles them in the `zenith`
package.

`pip install ./bindings/python` runs `cargo build --release -p libzenith -p zenith-cli` in the
repository that holds this file (or in $ZENITH_SOURCE_DIR), copies the library into the package
and the command to `zenith/bin/zenith` (run by the `zenith` console script, zenith/_cli.py), and
marks the wheel as platform-specific (py3-none-<platform>: the package is pure ctypes, so any
CPython 3 on that platform can use it; `auditwheel repair` then gives it its manylinux tag, see
scripts/build_wheel.sh). Both copies are stripped of debug info when `strip` is available
($ZENITH_NO_STRIP=1 keeps it). Set $CARGO to use another cargo, and $ZENITH_CARGO_TARGET to build
for another target triple (e.g. `x86_64-unknown-linux-gnu.2.28` with CARGO=cargo-zigbuild, for a
library that needs only glibc 2.28). Cargo's progress goes to the terminal (`pip install -v`
shows it: the first build takes minutes on 2 cores).
"""

import json
import os
import pathlib
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.dist import Distribution
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1 (the wheel package had it)
    from wheel.bdist_wheel import bdist_wheel

HERE = pathlib.Path(__file__).resolve().parent
LIBRARY = "libzenith.so"
CLI = "zenith"


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


def cargo_build() -> tuple:
    """Runs cargo and returns the paths of the cdylib and the `zenith` executable it built (read
    from cargo's messages, so CARGO_TARGET_DIR and the like are honoured)."""
    cargo = os.environ.get("CARGO", "cargo")
    if shutil.which(cargo) is None:
        raise SystemExit("zenith: cargo not found; install Rust (https://rustup.rs) to build libzenith")
    command = [cargo]
    if os.path.basename(cargo).startswith("cargo-"):  # cargo-zigbuild is run as `cargo-zigbuild zigbuild`
        command.append(os.path.basename(cargo)[len("cargo-"):])
    else:
        command.append("build")
    command += ["--release", "-p", "libzenith", "-p", "zenith-cli", "--message-format=json-render-diagnostics"]
    target = os.environ.get("ZENITH_CARGO_TARGET")
    if target:
        command += ["--target", target]
    print("zenith: " + " ".join(command), flush=True)
    result = subprocess.run(command, cwd=source_dir(), stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"zenith: cargo build failed (exit {result.returncode})")
    library = executable = None
    for line in result.stdout.splitlines():
        message = json.loads(line) if line.startswith("{") else {}
        if message.get("reason") != "compiler-artifact":
            continue
        kinds = message.get("target", {}).get("kind", [])
        if "cdylib" in kinds:
            for filename in message.get("filenames", []):
                if filename.endswith(LIBRARY):
                    library = pathlib.Path(filename)
        if "bin" in kinds and message.get("target", {}).get("name") == CLI and message.get("executable"):
            executable = pathlib.Path(message["executable"])
    if library is None:
        raise SystemExit(f"zenith: cargo built no {LIBRARY}")
    if executable is None:
        raise SystemExit(f"zenith: cargo built no `{CLI}` command")
    return library, executable


def copy_stripped(source: pathlib.Path, target: pathlib.Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o755)
    if not os.environ.get("ZENITH_NO_STRIP") and shutil.which("strip"):
        subprocess.run(["strip", "--strip-debug", str(target)], check=True)


class BuildPy(build_py):
    def run(self):
        super().run()
        library, executable = cargo_build()
        package = pathlib.Path(self.build_lib) / "zenith"
        copy_stripped(library, package / LIBRARY)
        copy_stripped(executable, package / "bin" / CLI)


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False  # it carries a native library

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


class NativeDistribution(Distribution):
    """Says the package carries native code, so that its files go to platlib (the wheel's root),
    where `auditwheel repair` looks for binaries, not purelib."""

    def has_ext_modules(self):
        return True


setup(
    version=version(),
    distclass=NativeDistribution,
    cmdclass={"build_py": BuildPy, "bdist_wheel": PlatformWheel},
)
