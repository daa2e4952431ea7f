"""The gate on its own: checks defined as data, structural checks that no override lets through.

Structural problems never reach the gate through the engine (those objects are
quarantined first), so these tests hand the gate staged frames that a faulty
reader or planner could produce and check that Great Expectations stops them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from profile_sync.config.loader import load_settings, resolved_directories
from profile_sync.config.settings import DirectoryGateLimits, GateLimits
from profile_sync.gates import GateFailedError, GateOverride
from profile_sync.gates.checks import CHECKS
from profile_sync.gates.export_gate import GateInputs, evaluate_export_gate
from profile_sync.profile_store.schema import property_specs
from profile_sync.sync.pending_exports import PendingExports
from tests.helpers.directory import FakeDirectory
from tests.helpers.sync import SyncHarness

README = Path(__file__).resolve().parents[3] / "README.md"
OVERRIDE = GateOverride(by="alice", reason="testing", at="2026-01-01T00:00:00+00:00")


# -- the catalogue -----------------------------------------------------------------------
def test_every_limit_belongs_to_a_check_and_every_check_limit_exists():
    fields = set(GateLimits.model_fields)
    named = {limit for c in CHECKS for limit in c.limits}
    assert named == fields
    assert set(DirectoryGateLimits.model_fields) == fields


def test_structural_checks_cannot_be_overridden():
    fixed = {c.name for c in CHECKS if not c.overridable}
    assert fixed == {"source_not_empty", "anchors_present", "anchors_unique", "account_names_unique",
                     "values_fit_columns"}
    assert all(c.limits for c in CHECKS if c.overridable)


def test_readme_documents_every_check_and_every_key():
    text = README.read_text()
    for c in CHECKS:
        assert f"`{c.name}`" in text, c.name
    for key, info in GateLimits.model_fields.items():
        row = re.search(rf"^\| `gates\.{key}` \| `?([^|`]+)`? \|", text, re.M)
        assert row, key
        default = "null" if info.default is None else f"{info.default:g}" if isinstance(info.default, float) \
            else str(info.default)
        assert row.group(1).strip() == default, key
    assert "`directories[].gates`" in text
    assert "override_gates" in text and "override_reason" in text


# -- staged frames a faulty reader or planner could produce ---------------------------------
@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    h = SyncHarness(tmp_path_factory.mktemp("staged"))
    d = FakeDirectory()
    for i in range(1, 13):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"Title {i}")
    h.sync(d)
    return h


def inputs(h: SyncHarness, space=None, people=None) -> GateInputs:
    store = h.inspector().store
    read = store.read_committed_frame
    settings = load_settings(h.config)
    meta = store.committed_manifest()["values"]["pending/meta"]
    pending = PendingExports(
        people=people if people is not None else read("pending/people"), groups=read("pending/groups"),
        memberships=read("pending/memberships"), held=read("pending/held"), managed=tuple(meta["managed"]),
        unchanged_people=0, unchanged_groups=0)
    return GateInputs(
        directories=resolved_directories(settings),
        spaces={"contoso": space if space is not None else read("cs/contoso")},
        pending=pending, store_people=read("ps/people"), store_groups=read("ps/groups"),
        mv_people=read("mv/people"), unresolved=read("mv/unresolved"), specs=property_specs(settings),
        limits={"contoso": settings.gate_limits("contoso")}, baselines={"contoso": 12})


def _failed(report) -> dict:
    return {c.name: c for c in report.failed_checks}


def test_the_staged_frames_pass(staged):
    report = evaluate_export_gate(inputs(staged))
    assert report.passed, [c.message for c in report.failed_checks]
    assert set(report.timings) == {"gx_import_s", "gx_validate_s", "gx_rows", "whole_set_s", "metrics_s", "total_s"}


def test_the_report_carries_what_its_runner_measured(staged):
    from profile_sync.gates.expectations import GxRunner

    runner = GxRunner(5)
    report = evaluate_export_gate(inputs(staged), runner=runner)
    t = report.timings
    assert t["gx_import_s"] == round(runner.import_seconds, 3)
    assert t["gx_validate_s"] == round(runner.validate_seconds, 3) and runner.validate_seconds > 0
    # The whole is measured around its parts (each rounded to 1 ms).
    assert t["total_s"] + 0.002 >= t["gx_validate_s"] + t["metrics_s"]


def test_duplicate_anchors_in_a_connector_space_stop_the_export_even_with_an_override(staged):
    space = staged.inspector().store.read_committed_frame("cs/contoso")
    twin = space.iloc[[0]].assign(dn="CN=Twin,OU=Users,DC=contoso,DC=com")
    report = evaluate_export_gate(inputs(staged, space=pd.concat([space, twin], ignore_index=True)), OVERRIDE)
    bad = _failed(report)["anchors_unique"]
    assert bad.engine == "great_expectations" and not bad.overridden
    assert {s["dn"] for s in bad.samples} == {space.iloc[0]["dn"], "CN=Twin,OU=Users,DC=contoso,DC=com"}
    assert not report.allows_export and report.overridden_by is None
    with pytest.raises(GateFailedError, match="does not cover anchors_unique"):
        raise GateFailedError(report)


def test_missing_anchors_stop_the_export(staged):
    space = staged.inspector().store.read_committed_frame("cs/contoso")
    space.loc[3, "anchor"] = None
    bad = _failed(evaluate_export_gate(inputs(staged, space=space)))["anchors_present"]
    assert bad.observed == {"objects": 12, "unexpected": 1}
    assert bad.samples == [{"anchor": None, "dn": space.loc[3, "dn"]}]


def _adds(h: SyncHarness) -> pd.DataFrame:
    """The first run's pending adds, as a planner would hand them to a fresh profile store."""
    return h.inspector().store.read_committed_frame("pending/people")


def test_duplicate_account_names_in_pending_exports_stop_the_export(staged):
    people = _adds(staged)
    people.loc[1, "account_name"] = people.loc[0, "account_name"].upper()
    inp = inputs(staged, people=people)
    inp = GateInputs(**{**inp.__dict__, "store_people": inp.store_people.iloc[0:0]})
    bad = _failed(evaluate_export_gate(inp))["account_names_unique"]
    assert bad.observed["unexpected"] == 2 and len(bad.samples) == 2


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_missing_account_names_in_pending_exports_stop_the_export(staged, blank):
    people = _adds(staged)
    people.loc[4, "account_name"] = blank
    inp = inputs(staged, people=people)
    inp = GateInputs(**{**inp.__dict__, "store_people": inp.store_people.iloc[0:0]})
    report = evaluate_export_gate(inp, OVERRIDE)
    bad = _failed(report)["account_names_unique"]
    assert bad.observed == {"profiles": 12, "unexpected": 0, "missing": 1}
    assert [s["profile_id"] for s in bad.samples] == [people.loc[4, "profile_id"]]
    assert not report.allows_export


def test_values_too_long_in_pending_exports_stop_the_export(staged):
    people = _adds(staged)
    people.loc[2, "title"] = "t" * 257
    report = evaluate_export_gate(inputs(staged, people=people), OVERRIDE)
    bad = _failed(report)["values_fit_columns"]
    assert bad.observed["too_long"] == {"title": 1}
    assert bad.samples == [{"profile_id": people.loc[2, "profile_id"], "property": "title", "length": 257,
                            "max_length": 256}]
    assert not report.allows_export


def test_an_override_only_covers_overridable_checks(staged):
    space = staged.inspector().store.read_committed_frame("cs/contoso")
    gone = space.assign(in_scope=[True] * 1 + [False] * (len(space) - 1))  # 11 of 12 people leave scope
    inp = inputs(staged, space=gone)
    report = evaluate_export_gate(GateInputs(**{**inp.__dict__, "baselines": {"contoso": 12}}), OVERRIDE)
    assert set(_failed(report)) == {"source_shrink"}
    assert report.overridden and report.allows_export and report.overridden_by == "alice"
    assert report.to_dict()["checks"][1]["overridden"] is True


# -- with a committed state: GX validates the changed rows; whole-set checks still see every row --------
def test_an_incremental_gate_with_nothing_changed_needs_no_gx_and_passes(staged):
    import dataclasses

    from profile_sync.gates.export_gate import ChangedRows
    from profile_sync.gates.expectations import GxRunner

    runner = GxRunner(5)
    unchanged = ChangedRows({"contoso": frozenset()}, frozenset())
    nothing = _adds(staged).iloc[0:0]  # no pending export
    report = evaluate_export_gate(dataclasses.replace(inputs(staged, people=nothing), changed=unchanged), runner=runner)
    full = evaluate_export_gate(inputs(staged, people=nothing))
    assert report.passed, [c.message for c in report.failed_checks]
    assert report.timings["gx_rows"] == 0 and runner.rows_validated == 0
    assert [(c.name, c.observed) for c in report.checks] == [(c.name, c.observed) for c in full.checks]


def test_an_incremental_gate_catches_a_changed_object_duplicating_an_unchanged_anchor(staged):
    import dataclasses

    from profile_sync.gates.export_gate import ChangedRows

    space = staged.inspector().store.read_committed_frame("cs/contoso")
    twin = space.iloc[[0]].assign(dn="CN=Twin,OU=Users,DC=contoso,DC=com")
    changed = ChangedRows({"contoso": frozenset([space.iloc[0]["anchor"]])}, frozenset())
    report = evaluate_export_gate(dataclasses.replace(inputs(staged, space=pd.concat([space, twin], ignore_index=True)),
                                                      changed=changed), OVERRIDE)
    bad = _failed(report)["anchors_unique"]
    assert {s["dn"] for s in bad.samples} == {space.iloc[0]["dn"], "CN=Twin,OU=Users,DC=contoso,DC=com"}
    assert report.timings["gx_rows"] > 0 and not report.allows_export
