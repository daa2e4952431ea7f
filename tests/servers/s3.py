"""A throwaway S3-compatible object store: moto's server (``moto[server]`` from PyPI) on loopback.

Started as its own process (``python -m moto.server``), stopped by PID. Speaks the S3 REST API
to any client (boto3, s3fs, Airflow's ``ObjectStoragePath``); the state store's tests run the
same commit protocol against it as against a local folder.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from ._util import LOOPBACK, ServerError, ServerProcess, free_port, make_temp_dir, remove_tree, wait_until

ACCESS_KEY = "profile-sync-test"
SECRET_KEY = "profile-sync-test-secret"
REGION = "us-east-1"


class S3Server:
    """moto's S3 server on 127.0.0.1:PORT; ``bucket(name)`` creates a bucket."""

    def __init__(self) -> None:
        self.port = free_port()
        self.tmp: Path | None = None
        self.process: ServerProcess | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> "S3Server":
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:  # pragma: no cover - it is in requirements.txt
            raise ServerError(f"moto[server] is not installed: {exc}") from exc
        self.tmp = make_temp_dir("psync-s3-")
        self.process = ServerProcess([sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)],
                                     log_path=self.tmp / "moto.log")
        try:
            wait_until(self._ready, timeout=60, what="moto S3 server", alive=self.process.alive)
        except Exception:
            self.close()
            raise
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):  # noqa: S310 - loopback
                return True
        except OSError:
            return False

    def client(self):  # noqa: ANN201
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def filesystem(self):  # noqa: ANN201
        """An s3fs filesystem for this server (what Airflow's ObjectStoragePath builds from a Connection)."""
        import s3fs

        return s3fs.S3FileSystem(key=ACCESS_KEY, secret=SECRET_KEY, endpoint_url=self.endpoint_url,
                                 client_kwargs={"region_name": REGION}, skip_instance_cache=True)

    def airflow_connection(self) -> str:
        """An ``aws`` Airflow Connection (JSON, for ``AIRFLOW_CONN_<ID>``) reaching this server."""
        import json

        return json.dumps({"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
                           "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION}})

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def close(self) -> None:
        self.stop()
        remove_tree(self.tmp)
        self.tmp = None

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
