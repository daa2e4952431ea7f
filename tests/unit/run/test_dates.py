"""Backfills that mean something: dated sources replay their own date's data, never going back in time; live
sources collapse a backfill to one run, the other dates recorded as skipped with the reason."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from profile_sync.run.local import run_sync
from tests.helpers.directory import team
from tests.helpers.sync import SyncHarness


def _day(n: int) -> datetime:
    return datetime(2026, 11, n, tzinfo=timezone.utc)


def _run(h: SyncHarness, day: int, run_type: str = "backfill") -> dict:
    ctx = h.context("full")
    ctx.run_type, ctx.logical_date, ctx.data_interval_end = run_type, _day(day), _day(day) + timedelta(days=1)
    return run_sync(ctx)


def test_dated_exports_replay_in_date_order_and_never_go_back(tmp_path):
    h = SyncHarness(tmp_path, directory={"path": str(tmp_path / "exports" / "{{ ds }}.ldif")})
    (tmp_path / "exports").mkdir()
    for day, people in ((1, 3), (2, 5), (3, 4)):
        team(people).write(tmp_path / "exports" / f"2026-11-{day:02d}.ldif")
    try:
        for day, active in ((1, 3), (2, 5), (3, 4)):
            out = _run(h, day)
            assert out["finish_run"]["status"] == "success"
            people = h.profiles()
            assert (people["state"] == "active").sum() == active, day
            assert h.last_run()["ds"] == f"2026-11-{day:02d}"
        assert h.committed_manifest()["values"]["source/ds"] == "2026-11-03"

        before = h.profiles().to_dict("records")
        older = _run(h, 2)
        assert older["start_run"]["skipped"] is True
        assert "older than those the committed state was synchronized from (2026-11-03)" in older["start_run"]["reason"]
        assert h.last_run()["status"] == "skipped"
        assert h.profiles().to_dict("records") == before
    finally:
        h.close()


def test_a_backfill_of_a_live_directory_is_one_run(tmp_path):
    h = SyncHarness(tmp_path)
    team(4).write(h.ldif)
    try:
        first = _run(h, 1)
        assert first["finish_run"]["status"] == "success"
        first_key = h.last_run()["run_key"]
        for day in (2, 3):
            out = _run(h, day)
            assert out["start_run"]["skipped"] is True and "finish_run" not in out
            reason = out["start_run"]["reason"]
            assert f"run {first_key} synchronized them" in reason and f"2026-11-0{day}" in reason
            assert h.last_run()["status"] == "skipped"
        assert _run(h, 4, run_type="scheduled")["finish_run"]["status"] == "success"  # not a backfill: runs
    finally:
        h.close()
