"""Builds zenith_torch_ext against an installed libzenith found with pkg-config.

    make install PREFIX=$HOME/.local                       # from the repository root
    PKG_CONFIG_PATH=$HOME/.local/lib/pkgconfig pip install --no-build-isolation ./examples/torch_extension
    # or, in place: python setup.py build_ext --inplace
"""

import shlex
import subprocess

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension


def pkg_config(*args: str) -> list:
    try:
        out = subprocess.run(["pkg-config", *args, "zenith"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"pkg-config cannot find zenith ({e}); run `make install` and set PKG_CONFIG_PATH") from None
    return shlex.split(out)


libdir = pkg_config("--variable=libdir")[0]
setup(
    name="zenith_torch_ext",
    version="0.1.0",
    ext_modules=[
        CppExtension(
            "zenith_torch_ext",
            ["zenith_torch_ext.cpp"],
            extra_compile_args=pkg_config("--cflags"),
            extra_link_args=pkg_config("--libs") + [f"-Wl,-rpath,{libdir}"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
