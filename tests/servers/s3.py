"""A throwaway S3-compatible server: moto's standalone server (``moto[server]`` from PyPI) in its own
process on a free 127.0.0.1 port, with the buckets the tests need.

``python -m moto.server -H 127.0.0.1 -p PORT`` runs as a direct child (own process group,
``PR_SET_PDEATHSIG``) and is stopped by its PID. All data lives in that process's memory: stopping it
throws everything away. Any access key is accepted; :attr:`access_key`/:attr:`secret_key` are what
the tests' Connections carry, so the code under test signs its requests as it would against AWS.

What moto 5.2 does with conditional writes (checked by ``tests/distributed/test_object_storage.py``):
``PutObject`` with ``If-None-Match: *`` answers 412 when the key exists, ``If-Match: <etag>`` answers
412 on a stale ETag (and 404 ``NoSuchKey`` when the key is missing); ``DeleteObject`` honours
``If-Match`` too. The check and the write are **not one atomic step** in moto (read, compare, then
store, without a lock): two concurrent writers with the same ``If-Match`` ETag can both succeed there,
unlike on AWS S3. Tests must not rely on moto to arbitrate races between writers.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from ._util import (
    LOOPBACK,
    ServerError,
    ServerProcess,
    free_port,
    make_temp_dir,
    remove_tree,
    wait_until,
)

__all__ = ["MotoS3Server"]


class MotoS3Server:
    """moto's S3 for tests. ``with MotoS3Server(buckets=["psync-state"]) as s3: s3.endpoint_url``."""

    region = "us-east-1"

    def __init__(
        self,
        buckets: Sequence[str] = ("psync-state",),
        *,
        access_key: str = "psync-test-access-key",
        secret_key: str = "psync-test-secret-key",
        workdir: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        try:
            import moto.server  # noqa: F401  (the standalone server needs flask: moto[server])
        except ImportError as exc:
            raise ServerError(f"moto[server] is not installed ({exc}): "
                              "pip install -r requirements.txt -c constraints.txt") from exc
        self.buckets = tuple(buckets)
        self.access_key = access_key
        self.secret_key = secret_key
        self.start_timeout = start_timeout
        self._own_workdir = workdir is None
        self.workdir = workdir or make_temp_dir("moto-s3")
        self.host = LOOPBACK
        self._port: int | None = None
        self._proc: ServerProcess | None = None
        self.timings: dict[str, float] = {}

    # ----------------------------------------------------------------- identity

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("the S3 server has no port yet: call start() first")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    def airflow_connection(self) -> dict[str, Any]:
        """This server as an Airflow Connection of type ``aws`` (the JSON form of ``AIRFLOW_CONN_<ID>``
        and of ``POST /api/v2/connections``): keys in login/password, the endpoint in the extras."""
        return {"conn_type": "aws", "login": self.access_key, "password": self.secret_key,
                "extra": {"endpoint_url": self.endpoint_url, "region_name": self.region}}

    def airflow_connection_env(self) -> str:
        """:meth:`airflow_connection` as the value of an ``AIRFLOW_CONN_<ID>`` environment variable."""
        return json.dumps(self.airflow_connection())

    def client(self):  # noqa: ANN201 - boto3's client type is generated at run time
        """A boto3 S3 client for this server (test set-up and inspection)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> MotoS3Server:
        if self.running:
            return self
        for attempt in range(3):
            self._port = free_port()  # can race with another process: new port on retry
            try:
                self._start_once()
                return self
            except ServerError as exc:
                if "Address already in use" not in str(exc) or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self) -> None:
        t0 = time.monotonic()
        log_path = self.workdir / "moto.log"
        log_start = log_path.stat().st_size if log_path.exists() else 0
        self._proc = ServerProcess(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self._port)],
            log_path=log_path, cwd=self.workdir)
        try:
            wait_until(self._answers, self.start_timeout, f"moto S3 on {self.endpoint_url}", interval=0.1,
                       alive=self._proc.alive)
        except ServerError as exc:
            tail = log_path.read_text(errors="replace")[log_start:][-2000:]
            self.stop()
            raise ServerError(f"{exc}\n--- moto log ---\n{tail}") from exc
        s3 = self.client()
        for bucket in self.buckets:
            s3.create_bucket(Bucket=bucket)
        self.timings["start"] = time.monotonic() - t0

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1) as resp:  # noqa: S310
                return resp.status == 200
        except urllib.error.HTTPError as exc:
            return exc.code < 500

    def reset(self) -> None:
        """Throw every object and bucket away (moto's reset API), then create the buckets again."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - loopback test server
            pass
        s3 = self.client()
        for bucket in self.buckets:
            s3.create_bucket(Bucket=bucket)

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            self._proc.stop(timeout=timeout)
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the S3 server (a crash); everything it held is gone."""
        if self._proc is not None:
            self._proc.kill()
            self._proc = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self._own_workdir:
                remove_tree(self.workdir)

    def __enter__(self) -> MotoS3Server:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
