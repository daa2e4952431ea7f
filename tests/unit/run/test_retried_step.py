"""A step that fails and is retried (Airflow's task retry: the same run, a fresh process) keeps every
attempt in the run history: the first error — often the real cause — is not lost when the retry succeeds."""

from __future__ import annotations

import pytest

from profile_sync.run import plan, steps
from profile_sync.run.local import step_calls
from tests.helpers.directory import team
from tests.helpers.sync import SyncHarness


def test_a_retried_step_keeps_the_failed_attempt_before_the_successful_one(tmp_path):
    h = SyncHarness(tmp_path)
    try:
        team(5).write(h.ldif)
        ctx = h.context("full")
        assert steps.start_run(ctx.fresh()) is not None
        h.ldif.rename(tmp_path / "elsewhere.ldif")  # the export is not there yet: the first attempt fails
        with pytest.raises(Exception, match="does not exist"):
            steps.import_directory(ctx.fresh(), "contoso")
        (tmp_path / "elsewhere.ldif").rename(h.ldif)
        for _label, s, connection in step_calls(ctx):  # the retry, then the rest of the run
            fn = plan.engine_function(s)
            fn(ctx.fresh(), connection) if connection is not None else fn(ctx.fresh())
        steps.release_run(ctx.fresh())

        doc = h.last_run()
        assert doc["status"] == "success"
        imports = [s for s in doc["steps"] if s["step"] == "import_directory"]
        assert len(imports) == 1, imports  # one entry per step: the latest attempt ...
        assert (imports[0]["status"], imports[0]["attempt"]) == ("success", 2)
        earlier = imports[0]["attempts"]  # ... with the earlier ones under it, error included
        assert [(a["attempt"], a["status"]) for a in earlier] == [(1, "failed")]
        assert "does not exist" in earlier[0]["error"] and str(h.ldif) in earlier[0]["error"]
    finally:
        h.close()


def _flaky(monkeypatch, module, name: str, failures: int) -> list[int]:
    """Make ``module.name`` raise a transient error (the database busy) on its first ``failures`` calls."""
    from profile_sync.profile_store.errors import ProfileStoreUnavailableError

    real = getattr(module, name)
    calls: list[int] = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= failures:
            raise ProfileStoreUnavailableError("profile store sqlite:///x unavailable: database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)
    return calls


@pytest.mark.parametrize("step_name", ["start_run", "synchronize"])
def test_the_local_runner_retries_a_transient_error_the_way_the_dag_does(tmp_path, monkeypatch, step_name):
    from profile_sync.run import local

    h = SyncHarness(tmp_path)
    try:
        team(5).write(h.ldif)
        calls = _flaky(monkeypatch, steps, step_name, failures=1)
        with pytest.raises(Exception, match="database is locked"):  # without retries: the first error, as is
            local.run_sync(h.context("full"))
        assert h.inspector().lease.record() is None  # the failed run let the lease go
        calls.clear()
        out = local.run_sync(h.context("full"), retries=True, retry_delay=0.01)
        assert len(calls) == 2 and out["finish_run"]["status"] == "success"
        assert h.last_run()["status"] == "success"
    finally:
        h.close()


def test_a_gate_is_not_retried(tmp_path, monkeypatch):
    from profile_sync.run import local

    h = SyncHarness(tmp_path)
    try:
        team(5).write(h.ldif)
        calls = _flaky(monkeypatch, steps, "validate_export", failures=1)
        with pytest.raises(Exception, match="database is locked"):
            local.run_sync(h.context("full"), retries=True, retry_delay=0.01)
        assert len(calls) == 1  # retries=0 in the plan, as in the DAG
    finally:
        h.close()
