"""Mapped import tasks running at the same moment (a pool with more than one slot): each owns its part of the
run's working state, so two directories imported in parallel give exactly what a serial run gives."""

from __future__ import annotations

import threading

from profile_sync.run import steps
from profile_sync.run.local import step_calls
from profile_sync.run import plan
from tests.helpers.delta import assert_same, snapshot
from tests.helpers.directory import FakeDirectory
from tests.helpers.sync import SyncHarness


def _directories(tmp) -> dict:  # noqa: ANN001
    a, b = FakeDirectory(), FakeDirectory()
    for i in range(1, 9):
        a.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"A {i}")
        b.person(100 + i, f"Other {i}", upn=f"o{i}@fabrikam.com", title=f"B {i}")
    a.write(tmp / "contoso.ldif")
    b.write(tmp / "fabrikam.ldif")
    return {"directories": [{"name": n, "type": "ldif", "path": str(tmp / f"{n}.ldif"),
                             "containers": ["OU=Users,DC=contoso,DC=com"]} for n in ("contoso", "fabrikam")]}


def _harness(tmp) -> SyncHarness:  # noqa: ANN001
    h = SyncHarness(tmp)
    h.write_config(**_directories(tmp))
    return h


def test_two_imports_committing_at_the_same_moment_lose_nothing(tmp_path):
    serial, parallel = _harness(tmp_path / "serial"), _harness(tmp_path / "parallel")
    try:
        serial.sync()
        ctx = parallel.context("full")
        assert steps.start_run(ctx.fresh()) is not None
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def import_one(name: str) -> None:
            try:
                task = ctx.fresh()
                task.store.open_run(task.run_key, f"import_directory[{name}]")  # both see the same parts
                barrier.wait(timeout=60)
                steps.import_directory(task, name)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=import_one, args=(n,)) for n in ("contoso", "fabrikam")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        for label, s, connection in step_calls(ctx):
            if s.name == "import_directory":
                continue
            fn = plan.engine_function(s)
            fn(ctx.fresh(), connection) if connection is not None else fn(ctx.fresh())
        steps.release_run(ctx.fresh())

        assert parallel.last_run()["status"] == "success"
        committed = parallel.committed_manifest()
        assert {"cs/contoso", "cs/fabrikam"} <= set(committed["frames"])
        assert {"watermark/contoso", "watermark/fabrikam"} <= set(committed["values"])
        assert_same(snapshot(parallel), snapshot(serial), "two imports in parallel")
        assert (parallel.profiles()["state"] == "active").sum() == 16
    finally:
        serial.close()
        parallel.close()
