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
