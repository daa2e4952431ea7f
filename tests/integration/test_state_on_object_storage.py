"""The state store on object storage, reached the way a production worker reaches it: ``state_store.url:
s3://bucket/prefix`` with the credentials and endpoint of an Airflow ``aws`` Connection, through Airflow's
``ObjectStoragePath`` (plugins/profile_sync_airflow/hooks.py), against a real S3-compatible server.

Full, incremental and full again land exactly where the same runs land on a local folder; the bucket holds
exactly the objects the committed manifest references."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from profile_sync.state.store import object_names
from tests.helpers.delta import assert_same, snapshot
from tests.helpers.directory import USERS, team
from tests.helpers.sync import SyncHarness

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def s3_harness(tmp_path, s3_server, monkeypatch):
    from profile_sync_airflow.hooks import state_store_filesystem

    bucket = s3_server.bucket(f"profile-sync-{uuid.uuid4().hex[:10]}")
    monkeypatch.setenv("AIRFLOW_CONN_STATE_S3", s3_server.airflow_connection())
    h = SyncHarness(tmp_path / "s3", state_store={"url": f"s3://{bucket}/state", "conn_id": "state_s3"})
    h.resolve_filesystem = state_store_filesystem
    yield h, bucket, s3_server
    h.close()


def _frames(h: SyncHarness) -> dict[str, pd.DataFrame]:
    store = h.inspector().store
    return {k: store.read_committed_frame(k) for k in ("cs/contoso", "mv/people", "mv/links", "ps/people")}


def test_runs_on_object_storage_equal_runs_on_a_folder(s3_harness, tmp_path):
    h, bucket, s3 = s3_harness
    local = SyncHarness(tmp_path / "local")
    try:
        d = team(25)
        for mode in ("full", "incremental"):
            h.sync(d, mode=mode)
            local.sync(d, mode=mode)
            d.person(3, "Person 3", upn="p3@contoso.com", title=f"Changed in {mode}")
            d.remove(f"CN=Person {25 if mode == 'full' else 24},{USERS}")
        h.sync(d, mode="incremental")
        local.sync(d, mode="incremental")
        assert h.last_run()["mode"] == "incremental"
        assert_same(snapshot(h), snapshot(local), "runs with the state on S3")
        ours, theirs = _frames(h), _frames(local)
        for key in ours:
            pd.testing.assert_frame_equal(ours[key].sort_values(ours[key].columns[0]).reset_index(drop=True),
                                          theirs[key].sort_values(theirs[key].columns[0]).reset_index(drop=True),
                                          check_dtype=False, obj=key)

        listed = s3.client().list_objects_v2(Bucket=bucket, Prefix="state/objects/")
        names = {o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", [])}
        assert names == {n for e in h.committed_manifest()["frames"].values() for n in object_names(e)}
    finally:
        local.close()
