"""The export gate end to end: each blast-radius limit stops a run, writes nothing, and says why.

Every test syncs a 40-person directory once (the first run, which the default
limits let through), changes it so that one limit trips, and asserts that the
run fails at ``validate_export`` with a readable report, that the profile store
and the committed state are exactly as before, and — where it applies — that
an administrator's override lets the same change through and is recorded.
"""

from __future__ import annotations

import pytest

from profile_sync.gates import GateFailedError, GateOverrideError
from tests.helpers.directory import USERS, FakeDirectory
from tests.helpers.sync import SyncHarness

N = 40
SALES = f"OU=Sales,{USERS}"


def forty(**extra: object) -> FakeDirectory:
    """40 people: 1–10 in OU=Sales, every one with a title, an e-mail address and a manager (person 1)."""
    d = FakeDirectory()
    for i in range(1, N + 1):
        d.person(i, f"Person {i}", ou=SALES if i <= 10 else USERS, upn=f"p{i}@contoso.com",
                 title=f"Title {i}", proxyAddresses=[f"SMTP:p{i}@contoso.com"],
                 manager=f"CN=Person 1,{SALES}" if i > 1 else None, **extra)
    return d


def history(h: SyncHarness) -> dict:
    return h.last_run()


def gate_step(doc: dict) -> dict:
    return next(s for s in doc["steps"] if s["step"] == "validate_export")


def failed(doc: dict) -> dict[str, dict]:
    report = gate_step(doc)["gate_report"]
    return {c["name"]: c for c in report["checks"] if not c["passed"]}


def snapshot(h: SyncHarness) -> tuple:
    people = h.profiles().drop(columns=["updated_at"]).sort_index()
    manifest = h.committed_manifest()
    return people.to_dict("records"), manifest


@pytest.fixture
def synced(tmp_path):
    h = SyncHarness(tmp_path)
    d = forty()
    out = h.sync(d)
    assert out["validate_export"]["passed"] is True
    assert len(h.profiles()) == N
    return h, d


def expect_gate_failure(h: SyncHarness, d: FakeDirectory, *names: str) -> dict[str, dict]:
    before = snapshot(h)
    with pytest.raises(GateFailedError) as err:
        h.sync(d)
    for name in names:
        assert name in str(err.value)
    assert snapshot(h) == before, "a failed gate must leave the profile store and the committed state as they were"
    doc = history(h)
    assert doc["status"] == "failed"
    assert not any(s["step"] == "export_profile_store" for s in doc["steps"])
    bad = failed(doc)
    assert set(names) <= set(bad), bad.keys()
    return bad


def test_first_run_with_an_empty_profile_store_passes_the_default_limits(tmp_path):
    h = SyncHarness(tmp_path)
    out = h.sync(forty())
    gate = out["validate_export"]
    assert gate["passed"] and not gate["overridden"]
    names = [c["name"] for c in gate["report"]["checks"]]
    assert names[0] == "source_not_empty"
    assert {"source_shrink", "anchors_present", "anchors_unique", "account_names_unique", "values_fit_columns",
            "email_syntax", "reference_resolution", "people_deletes", "group_deletes", "updates",
            "property_blanking"} <= set(names)
    assert out["export_profile_store"]["adds"] == N


def test_mass_delete_fails_with_a_readable_report(synced):
    h, d = synced
    for i in range(11, 23):  # 12 of 40 people leave: 30 %
        d.remove(f"CN=Person {i},{USERS}")
    bad = expect_gate_failure(h, d, "people_deletes", "source_shrink")
    deletes = bad["people_deletes"]
    assert deletes["connection"] == "contoso"
    assert deletes["observed"] == {"marked": 12, "active": 40, "percent": 30.0}
    assert "≤ 500" in deletes["allowed"] and "5%" in deletes["allowed"]
    assert "12 profiles would be marked for deletion (30.0% of 40 active)" in deletes["message"]
    assert {s["source_dn"] for s in deletes["samples"]} == {f"CN=Person {i},{USERS}" for i in range(11, 23)}
    assert deletes["overridable"] is True and deletes["overridden"] is False
    shrink = bad["source_shrink"]
    assert shrink["observed"]["last_good_import"] == 40 and shrink["observed"]["in_scope_people"] == 28
    assert len(shrink["samples"]) == 12


def test_delete_count_limit_alone(tmp_path):
    h = SyncHarness(tmp_path, gates={"max_deletes": 3, "max_delete_percent": None, "max_shrink_percent": None})
    d = forty()
    h.sync(d)
    for i in range(11, 15):  # 4 > 3
        d.remove(f"CN=Person {i},{USERS}")
    bad = expect_gate_failure(h, d, "people_deletes")
    assert set(bad) == {"people_deletes"}
    d.entries.update(forty().entries)
    d.remove(f"CN=Person 11,{USERS}")
    d.remove(f"CN=Person 12,{USERS}")
    d.remove(f"CN=Person 13,{USERS}")
    out = h.sync(d)  # 3 ≤ 3
    assert out["export_profile_store"]["deletes"] == 3


def test_small_changes_never_trip_a_percentage(synced):
    h, d = synced
    for i in range(31, 41):  # 10 of 40 (25 %) but not more than min_count_for_percent_limits
        d.remove(f"CN=Person {i},{USERS}")
    out = h.sync(d)
    assert out["export_profile_store"]["deletes"] == 10


def test_mass_update_fails_and_a_per_connection_limit_lets_it_through(synced):
    h, d = synced
    for i in range(1, 16):  # 15 of 40 retitled: 37.5 %
        d.entries[f"CN=Person {i},{SALES if i <= 10 else USERS}"]["title"] = [f"New title {i}"]
    bad = expect_gate_failure(h, d, "updates")
    assert bad["updates"]["observed"] == {"updated": 15, "active": 40, "percent": 37.5}
    assert set(bad) == {"updates"}
    h.write_config(directory={"gates": {"max_update_percent": 50}})
    out = h.sync(d)
    assert out["validate_export"]["passed"] is True
    assert out["export_profile_store"]["updates"] == 15


def test_moves_alone_are_not_counted_as_updates(synced):
    h, d = synced
    for i in range(11, 31):  # 20 people move to another OU: only source_dn changes
        d.rename(f"CN=Person {i},{USERS}", f"CN=Person {i},OU=Moved,{USERS}")
    out = h.sync(d)
    updates = next(c for c in out["validate_export"]["report"]["checks"] if c["name"] == "updates")
    assert updates["observed"]["updated"] == 0
    assert out["export_profile_store"]["updates"] == 20


def test_blanking_a_property_for_many_people_fails(tmp_path):
    h = SyncHarness(tmp_path, gates={"max_update_percent": None})
    d = forty()
    h.sync(d)
    for i in range(11, 23):  # lost read access to title for 12 people
        del d.entries[f"CN=Person {i},{USERS}"]["title"]
    bad = expect_gate_failure(h, d, "property_blanking")
    blank = bad["property_blanking"]
    assert blank["observed"]["properties"]["title"] == {"blanked": 12, "percent": 30.0}
    assert blank["observed"]["properties"]["job_title"] == {"blanked": 12, "percent": 30.0}
    assert "title would be emptied for 12 profiles" in blank["message"]
    assert {s["property"] for s in blank["samples"]} <= {"title", "job_title"}
    assert set(bad) == {"property_blanking"}


def test_invalid_email_addresses_fail(synced):
    h, d = synced
    for i in range(11, 23):
        d.entries[f"CN=Person {i},{USERS}"]["proxyAddresses"] = [f"SMTP:person {i} at contoso"]
    bad = expect_gate_failure(h, d, "email_syntax")
    email = bad["email_syntax"]
    assert email["observed"]["invalid"] == 12
    assert email["engine"] == "great_expectations"
    assert {s["work_email"] for s in email["samples"]} == {f"person {i} at contoso" for i in range(11, 23)}


def test_a_low_reference_resolution_rate_fails(synced):
    h, d = synced
    d.remove(f"CN=Person 1,{SALES}")  # every manager reference now dangles
    h.write_config(gates={"max_update_percent": None, "max_blank_percent": None})
    bad = expect_gate_failure(h, d, "reference_resolution")
    ref = bad["reference_resolution"]
    assert ref["observed"] == {"references": 39, "unresolved": 39, "resolved_percent": 0.0}
    assert ref["samples"][0]["reason"] == "not found in the directory"


def test_override_lets_one_run_through_and_is_recorded(synced):
    h, d = synced
    for i in range(11, 23):
        d.remove(f"CN=Person {i},{USERS}")
    d.write(h.ldif)
    ctx = h.context()
    ctx.override_gates, ctx.override_reason, ctx.triggering_user = True, "contractors left (CHG-1234)", "alice"
    from profile_sync.run.local import run_sync

    out = run_sync(ctx)
    gate = out["validate_export"]
    assert gate["passed"] is False and gate["overridden"] is True and gate["overridden_by"] == "alice"
    assert set(gate["failed_checks"]) == {"people_deletes[contoso]", "source_shrink[contoso]"}
    assert out["export_profile_store"]["deletes"] == 12
    assert (h.profiles()["state"] == "marked_for_deletion").sum() == 12
    doc = history(h)
    assert doc["status"] == "success"
    assert doc["override_requested"]["requested_by"] == "alice"
    (entry,) = doc["overrides"]
    assert entry["gate"] == "validate_export" and entry["by"] == "alice"
    assert entry["reason"] == "contractors left (CHG-1234)" and entry["at"]
    assert {c["name"] for c in entry["checks"]} == {"people_deletes", "source_shrink"}
    report = gate_step(doc)["report"]
    assert report["overridden"] is True and report["override"]["by"] == "alice"
    assert all(c["overridden"] for c in report["checks"] if not c["passed"])

    # The override was for one run: the new size is the baseline, and the next mass delete is stopped again.
    for i in range(23, 35):
        d.remove(f"CN=Person {i},{USERS}")
    expect_gate_failure(h, d, "people_deletes")


def test_an_override_needs_a_reason(synced):
    h, d = synced
    ctx = h.context()
    ctx.override_gates = True
    from profile_sync.run.local import run_sync

    with pytest.raises(GateOverrideError, match="override_reason"):
        run_sync(ctx)
    assert ctx.lease.holder() is None


def test_an_unneeded_override_is_noted_but_not_recorded_as_used(synced):
    h, d = synced
    ctx = h.context()
    ctx.override_gates, ctx.override_reason = True, "just in case"
    from profile_sync.run.local import run_sync

    out = run_sync(ctx)
    assert out["validate_export"]["passed"] is True and out["validate_export"]["overridden"] is False
    doc = history(h)
    assert doc["override_requested"]["reason"] == "just in case"
    assert doc["overrides"] == []


def test_limits_are_validated_when_the_configuration_loads(tmp_path):
    from profile_sync.config.errors import ConfigError
    from profile_sync.config.loader import load_settings

    h = SyncHarness(tmp_path, gates={"max_delete_percent": 150})
    with pytest.raises(ConfigError, match=r"gates\.max_delete_percent"):
        load_settings(h.config)
    h.write_config(directory={"gates": {"max_deletes_typo": 3}})
    with pytest.raises(ConfigError, match=r"directories\[0\]\.gates\.max_deletes_typo"):
        load_settings(h.config)


def test_per_connection_limits_override_only_the_keys_they_set(tmp_path):
    from profile_sync.config.loader import load_settings

    h = SyncHarness(tmp_path, gates={"max_deletes": 100, "max_update_percent": 30},
                    directory={"gates": {"max_update_percent": None}})
    limits = load_settings(h.config).gate_limits("contoso")
    assert limits.max_deletes == 100
    assert limits.max_update_percent is None
    assert limits.max_blank_percent == 5.0
