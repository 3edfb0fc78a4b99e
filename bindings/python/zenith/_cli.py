"""The ``zenith`` console script: runs the ``zenith`` command (libzenith/cli) bundled in this
package.

``pip install ./bindings/python`` builds the command with cargo and ships it in the wheel as
``zenith/bin/zenith``; this entry point replaces the Python process with it (``os.execv``), so
the command's exit codes, signals, terminal detection (progress bars only on a terminal) and
``NO_COLOR`` behave exactly as when it is run directly. From a source checkout without an
installed copy it runs the repository's ``target/release/zenith``. ``$ZENITH_CLI`` names another
binary.
"""

from __future__ import annotations

import os
import pathlib
import sys

CLI_ENV = "ZENITH_CLI"
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def candidates() -> list:
    """Where the command is looked for, in order."""
    env = os.environ.get(CLI_ENV)
    if env:
        return [pathlib.Path(env)]  # an explicit choice: no silent fallback
    return [_PACKAGE_DIR / "bin" / "zenith", _PACKAGE_DIR.parents[2] / "target" / "release" / "zenith"]


def executable() -> pathlib.Path:
    """The path of the ``zenith`` command; FileNotFoundError naming where it looked."""
    tried = candidates()
    for path in tried:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    where = ", ".join(str(p) for p in tried)
    raise FileNotFoundError(
        f"zenith: the zenith command was not found (looked at {where}); install the package with "
        f"`pip install ./bindings/python`, run `cargo build --release -p zenith-cli`, or set {CLI_ENV}"
    )


def main() -> None:
    try:
        path = executable()
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        sys.exit(127)  # the shell's "command not found"
    os.execv(str(path), [str(path)] + sys.argv[1:])


if __name__ == "__main__":
    main()
