"""The references that do not resolve are one set, whatever the path that computed them.

They used to differ for the same data (4,114 after an incremental run, 4,055 after a no-change
incremental, 4,171 after a full run): a delta synchronization only resolved the people it recomputed,
so the others' dangling managers dropped out of the count — and out of the gate's
``reference_resolution`` check. Here every incremental run is compared with a full run of a fresh
state on the same directory.
"""

from __future__ import annotations

import pandas as pd
import pytest

from profile_sync.config.loader import load_settings
from profile_sync.run.context import RunContext
from tests.helpers.directory import USERS, FakeDirectory
from tests.helpers.sync import SyncHarness

GONE = "OU=Gone,DC=contoso,DC=com"  # not a selected container: out of scope


def directory() -> FakeDirectory:
    d = FakeDirectory()
    for i in range(1, 41):
        manager = (f"CN=Ghost {i},{USERS}" if i % 7 == 0 else  # nobody there
                   f"CN=Person {i - 1},{USERS}" if i > 1 else None)
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", manager=manager, title=f"Title {i}")
    d.person(90, "Outsider", ou=GONE, upn="out@contoso.com")
    d.person(41, "Person 41", upn="p41@contoso.com", manager=f"CN=Outsider,{GONE}")  # out of scope
    d.group(1000, "Everyone", [f"CN=Person {i},{USERS}" for i in range(1, 42)] + [f"CN=Nobody,{USERS}"])
    return d


def unresolved(h: SyncHarness) -> list[tuple]:
    ctx = RunContext(run_id="read", settings=load_settings(h.config), project_root=h.tmp)
    frame = ctx.store.read_committed_frame("mv/unresolved")
    rows = frame[["source_dn", "property", "target_dn", "reason"]].astype(str)
    return sorted(map(tuple, rows.to_numpy().tolist()))


def full_run_of(d: FakeDirectory, tmp) -> tuple[int, list[tuple], dict]:  # noqa: ANN001
    fresh = SyncHarness(tmp)
    out = fresh.sync(d)
    return out["synchronize"]["unresolved_references"], unresolved(fresh), _gate(out)


def _gate(out: dict) -> dict:
    (check,) = [c for c in out["validate_export"]["report"]["checks"] if c["name"] == "reference_resolution"]
    return check["observed"]


def _rename(d: FakeDirectory) -> None:
    d.rename(f"CN=Person 20,{USERS}", f"CN=Person Twenty,{USERS}")


def _delete_a_manager(d: FakeDirectory) -> None:
    d.remove(f"CN=Person 10,{USERS}")  # Person 11 now points at nobody


def _create_a_ghost(d: FakeDirectory) -> None:
    d.person(700, "Ghost 14", upn="ghost14@contoso.com")  # Person 14's manager appears


def _edit(d: FakeDirectory) -> None:
    d.entries[f"CN=Person 3,{USERS}"]["title"] = ["Changed"]


def _edit_a_dangling_one(d: FakeDirectory) -> None:
    d.entries[f"CN=Person 21,{USERS}"]["title"] = ["Changed too"]


@pytest.mark.parametrize("change", [None, _edit, _edit_a_dangling_one, _rename, _delete_a_manager, _create_a_ghost])
def test_incremental_runs_report_what_a_full_run_reports(tmp_path, change):
    d = directory()
    h = SyncHarness(tmp_path / "incremental")
    first = h.sync(d)
    assert first["synchronize"]["unresolved_references"] == 5 + 1 + 1  # ghosts, the outsider, Nobody
    if change is not None:
        change(d)
    out = h.sync(d, mode="incremental")
    assert out["synchronize"]["delta"] is True
    again = h.sync(d, mode="incremental")  # nothing changed since: the file is not even read again
    count, rows, gate = full_run_of(d, tmp_path / "full")
    assert out["synchronize"]["unresolved_references"] == again["synchronize"]["unresolved_references"] == count
    assert unresolved(h) == rows
    assert _gate(out) == _gate(again) == gate
    reasons = pd.Series([r[3] for r in rows]).value_counts().to_dict()
    assert reasons.get("out of scope") == 1  # Person 41's manager is outside the selected containers
