"""A real S3 server for the remote-dataset tests: versitygw (SigV4 checked, a POSIX backend
directory under target/s3/), started by scripts/s3_server.sh on a free port of 127.0.0.1.

Files are written with pyarrow (``pyarrow.fs.S3FileSystem`` writes to the server), so nothing
of Zenith writes what it reads. The fixtures expose the server (stop and restart on the same
port and directory, for the outage tests), a pyarrow filesystem on it and Zenith's
``storage_options`` for it.
"""

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bindings" / "python"))
os.environ.setdefault("ZENITH_LIBRARY", str(pathlib.Path(os.environ.get("ZENITH_LIB_DIR") or REPO / "target" / "release") / "libzenith.so"))

SCRIPT = REPO / "scripts" / "s3_server.sh"
ACCESS = "zenith"
SECRET = "zenith-secret-key"
BUCKET = "zenith-test"


class Server:
    """The versitygw process: its port, and stop/start on the same port and data."""

    def __init__(self):
        self.data = REPO / "target" / "s3" / "data"
        self.port = None

    def start(self):
        env = dict(os.environ, ZENITH_S3_ACCESS_KEY=ACCESS, ZENITH_S3_SECRET_KEY=SECRET)
        args = [str(SCRIPT), "start"]
        if self.port is not None:
            args += [str(self.port), str(self.data)]
        else:
            args += ["", str(self.data)]
        out = subprocess.run(args, env=env, check=True, capture_output=True, text=True, timeout=600)
        self.port = int(out.stdout.strip().splitlines()[-1])

    def stop(self):
        subprocess.run([str(SCRIPT), "stop"], check=True, timeout=60)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def server():
    s = Server()
    subprocess.run([str(SCRIPT), "stop"], check=True, timeout=60)  # a leftover from a killed run
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def s3fs(server):
    from pyarrow import fs

    filesystem = fs.S3FileSystem(
        access_key=ACCESS,
        secret_key=SECRET,
        endpoint_override=f"127.0.0.1:{server.port}",
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
        allow_bucket_deletion=True,
    )
    try:
        filesystem.create_dir(BUCKET)
    except OSError:
        pass  # already there (a rerun over the same data directory)
    return filesystem


@pytest.fixture(scope="session")
def options(server):
    """Zenith's storage options for the server (short deadlines: tests stop it on purpose)."""
    return {
        "endpoint": server.endpoint,
        "region": "us-east-1",
        "access_key_id": ACCESS,
        "secret_access_key": SECRET,
        "path_style": True,
        "allow_http": True,
        "retries": 3,
        "retry_timeout": 5,
    }
