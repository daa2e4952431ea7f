"""State on object storage, the pieces the state store will use: Airflow's ``ObjectStoragePath`` with an
``aws`` Connection pointing at an S3-compatible server (moto), and the two conditional writes an atomic
manifest switch needs on a store without rename — create-if-absent (``If-None-Match: *``) and
replace-if-unchanged (``If-Match: <ETag>``).

The Connection shape that works (JSON form of ``AIRFLOW_CONN_<ID>`` or of ``POST /api/v2/connections``)::

    {"conn_type": "aws", "login": "<access key>", "password": "<secret key>",
     "extra": {"endpoint_url": "http://127.0.0.1:PORT", "region_name": "us-east-1"}}

moto checks the conditions one request at a time; it does not arbitrate concurrent writers atomically
(see tests/servers/s3.py), so these tests are sequential.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

pytestmark = pytest.mark.timeout(120)

CONN_ID = "psync_objects_s3"
BUCKET = "psync-object-storage-test"


@pytest.fixture(scope="module")
def bucket(s3_server) -> str:
    return s3_server.bucket(BUCKET)


@pytest.fixture
def state_root(s3_server, bucket, monkeypatch):
    """``s3://<bucket>/<fresh prefix>/`` through the Connection ``psync_objects_s3`` (from the environment)."""
    from airflow.sdk import ObjectStoragePath

    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", s3_server.airflow_connection())
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    return ObjectStoragePath(f"s3://{BUCKET}/{prefix}/", conn_id=CONN_ID), prefix


def test_object_storage_path_writes_through_the_aws_connection(state_root, s3_server):
    root, prefix = state_root
    (root / "manifest.json").write_text('{"version": 1}')
    frame = pd.DataFrame({"anchor": ["a", "b", "c"], "title": ["x", None, "z"]})
    with (root / "cs" / "corp.parquet").open("wb") as fh:
        frame.to_parquet(fh)

    # What the server holds, seen with a plain S3 client rather than through Airflow.
    keys = sorted(o["Key"] for o in s3_server.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"])
    assert keys == [f"{prefix}/cs/corp.parquet", f"{prefix}/manifest.json"]
    assert s3_server.client().get_object(Bucket=BUCKET, Key=f"{prefix}/manifest.json")["Body"].read() == \
        b'{"version": 1}'
    assert type(root.fs).__module__.startswith("s3fs")
    assert root.fs.endpoint_url == s3_server.endpoint_url  # the endpoint came from the Connection's extras
    with (root / "cs" / "corp.parquet").open("rb") as fh:
        pd.testing.assert_frame_equal(pd.read_parquet(fh), frame)


def test_create_if_absent_refuses_an_existing_key(state_root):
    root, _ = state_root
    version = root / "versions" / "00000001.json"
    version.fs.pipe_file(version.path, b"first", mode="create")  # PutObject with If-None-Match: *
    with pytest.raises(FileExistsError):
        version.fs.pipe_file(version.path, b"second", mode="create")
    with pytest.raises(FileExistsError):
        with version.open("xb") as fh:  # exclusive open: the same condition when the file is committed
            fh.write(b"third")
    assert version.read_bytes() == b"first"


def test_replace_if_unchanged_refuses_a_stale_etag(state_root):
    root, _ = state_root
    manifest = root / "manifest.json"
    manifest.write_text('{"version": 1}')
    fs = manifest.fs
    seen = fs.info(manifest.path)["ETag"]
    fs.pipe_file(manifest.path, b'{"version": 2}', IfMatch=seen)  # PutObject with If-Match: <ETag>
    with pytest.raises(OSError, match="pre-conditions"):  # 412 PreconditionFailed
        fs.pipe_file(manifest.path, b'{"version": 3}', IfMatch=seen)
    assert manifest.read_text() == '{"version": 2}'
    assert fs.info(manifest.path)["ETag"] != seen
