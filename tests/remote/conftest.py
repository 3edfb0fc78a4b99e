"""Real object-store servers for the remote-dataset tests, started by scripts/object_servers.sh
on free ports of 127.0.0.1, each over a backend directory under target/NAME/: versitygw (S3,
SigV4 checked), Azurite (Azure Blob, shared-key checked), fake-gcs-server (GCS) and WsgiDAV
(HTTP with Range and WebDAV listings).

Files are written with pyarrow (``pyarrow.fs.S3FileSystem`` writes to the server), so nothing
of Zenith writes what it reads. The fixtures expose the server (stop and restart on the same
port and directory, for the outage tests), a pyarrow filesystem on it and Zenith's
``storage_options`` for it.
"""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bindings" / "python"))
os.environ.setdefault("ZENITH_LIBRARY", str(pathlib.Path(os.environ.get("ZENITH_LIB_DIR") or REPO / "target" / "release") / "libzenith.so"))

SCRIPT = REPO / "scripts" / "object_servers.sh"
ACCESS = "zenith"
SECRET = "zenith-secret-key"
BUCKET = "zenith-test"


class Server:
    """One server of scripts/object_servers.sh (``s3``, ``azurite``, ``gcs``, ``webdav``): its
    port, and stop/start on the same port and data directory."""

    def __init__(self, name):
        self.name = name
        self.data = REPO / "target" / name / "data"
        self.port = None

    def start(self):
        env = dict(os.environ, ZENITH_S3_ACCESS_KEY=ACCESS, ZENITH_S3_SECRET_KEY=SECRET,
                   PYTHON=sys.executable)
        args = [str(SCRIPT), "start", self.name, str(self.port or ""), str(self.data)]
        out = subprocess.run(args, env=env, check=True, capture_output=True, text=True, timeout=600)
        self.port = int(out.stdout.strip().splitlines()[-1])

    def stop(self):
        subprocess.run([str(SCRIPT), "stop", self.name], check=True, timeout=60)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"


def running(name, fresh=False):
    """A started server (a leftover of a killed run stopped first); ``fresh`` empties its data."""
    s = Server(name)
    subprocess.run([str(SCRIPT), "stop", name], check=True, timeout=60)
    if fresh and s.data.exists():
        shutil.rmtree(s.data)
    s.start()
    return s


@pytest.fixture(scope="session")
def server():
    s = running("s3")
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
