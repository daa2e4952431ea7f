"""A full state-store disk: the run fails, the failure is recorded, nothing truncated stays behind, the lease is
free, the committed state is as it was — and once there is room again the next run converges.

The state store lives on a tmpfs of its own (mounted by the test, as root), shrunk to just above what the
first run left, so the next run's writes fail with ENOSPC part-way.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from profile_sync.state.store import object_names
from tests.helpers.delta import assert_same, snapshot
from tests.helpers.directory import team
from tests.helpers.sync import SyncHarness
from tests.servers import require_servers

pytestmark = pytest.mark.timeout(600)


def _mount(path, size: str) -> None:  # noqa: ANN001
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True, timeout=30)


def _remount(path, size_bytes: int) -> None:  # noqa: ANN001
    subprocess.run(["mount", "-o", f"remount,size={size_bytes}", str(path)], check=True, timeout=30)


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        if require_servers():
            pytest.fail("the disk-full test mounts a tmpfs and needs root (CI runs as root)")
        pytest.skip("needs root to mount a tmpfs")
    state = tmp_path / "state"
    state.mkdir()
    _mount(state, "16m")
    yield state
    subprocess.run(["umount", "-l", str(state)], check=False, timeout=30)


def test_a_full_state_store_disk_fails_cleanly_and_the_next_run_converges(small_disk, tmp_path):
    h = SyncHarness(tmp_path)
    clean = SyncHarness(tmp_path / "clean")
    try:
        h.sync(team(40))
        committed = h.committed_manifest()
        used = os.statvfs(small_disk)
        in_use = (used.f_blocks - used.f_bfree) * used.f_frsize
        _remount(small_disk, in_use + 2 * used.f_frsize)  # two pages left: the next run cannot write its frames

        with pytest.raises(Exception, match="No space left on device"):
            h.sync(team(45), mode="incremental")
        doc = h.last_run()
        assert doc["status"] == "failed"
        assert "No space left on device" in doc["error"]
        failed = [s for s in doc["steps"] if s["status"] == "failed"]
        assert failed and "No space left on device" in failed[0]["error"]
        inspector = h.inspector()
        assert inspector.lease.record() is None
        assert inspector.coordination.live_runs() == []
        assert inspector.store.committed_manifest() == committed
        objects = {o.name for o in inspector.store.location.list("objects")}
        assert objects == {n for e in committed["frames"].values() for n in object_names(e)}  # no truncated or orphaned object

        _remount(small_disk, 64 * 1024 * 1024)
        out = h.sync(team(45), mode="incremental")
        assert out["finish_run"]["status"] == "success"
        clean.sync(team(45))
        assert_same(snapshot(h), snapshot(clean), "a run after the disk had room again")
    finally:
        h.close()
        clean.close()
