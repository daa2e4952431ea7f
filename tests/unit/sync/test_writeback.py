"""Write-back planning: what goes to the directory, and the baseline rule that prevents flip-flops."""

from __future__ import annotations

import pandas as pd
import pytest

from profile_sync.config.presets import resolve_directory
from profile_sync.config.settings import DirectoryConnection
from profile_sync.sync import writeback
from profile_sync.sync.connector_space import attr_column

PIC = attr_column("thumbnailPhoto")
OLD, NEW, OTHER = b"\xff\xd8old", b"\xff\xd8new", b"\xff\xd8other"


def directory(direction="both"):
    return resolve_directory(DirectoryConnection(
        name="ad", type="ldap", conn_id="ad", containers=("DC=x",),
        mappings={"picture": {"source": "thumbnailPhoto", "direction": direction}}))


def space(pictures: dict[str, bytes | None]) -> pd.DataFrame:
    anchors = list(pictures)
    return pd.DataFrame({"anchor": anchors, "dn": [f"CN={a},DC=x" for a in anchors], "in_scope": True,
                         "object_type": "person", PIC: pd.Series(list(pictures.values()), dtype=object)})


def links(anchors) -> pd.DataFrame:
    return pd.DataFrame({"connection": "ad", "anchor": list(anchors), "mv_id": [f"p-{a}" for a in anchors],
                         "object_type": "person", "connected": True})


def store(pictures: dict[str, bytes | None]) -> pd.DataFrame:
    return pd.DataFrame({"profile_id": [f"p-{a}" for a in pictures], "state": "active",
                         "picture": pd.Series(list(pictures.values()), dtype=object)})


def baseline(values: dict[str, bytes | None]) -> pd.DataFrame:
    return pd.DataFrame({"anchor": list(values), "property": "picture",
                         "value_hash": [writeback.value_hash(v) for v in values.values()]})


def test_plan_writes_what_differs_and_agrees_on_the_rest():
    cs = space({"a": OLD, "b": OLD, "c": None})
    plan = writeback.plan_directory_exports(directory(), cs, links("abc"), store({"a": NEW, "b": OLD, "c": OTHER}),
                                            None)
    pending = plan.pending.set_index("anchor")
    assert sorted(pending.index) == ["a", "c"]
    assert pending.loc["a", "value"] == NEW and pending.loc["a", "attribute"] == "thumbnailPhoto"
    assert pending.loc["a", "dn"] == "CN=a,DC=x" and pending.loc["a", "profile_id"] == "p-a"
    assert plan.agreed == 1
    assert plan.baseline.set_index("anchor").loc["b", "value_hash"] == writeback.value_hash(OLD)
    assert "a" not in set(plan.baseline["anchor"])  # not agreed until confirmed


def test_a_picture_removed_in_the_profile_store_is_removed_from_the_directory():
    plan = writeback.plan_directory_exports(directory("export"), space({"a": OLD}), links("a"),
                                            store({"a": None}), None)
    assert plan.pending["value"].tolist() == [None]


def test_out_of_scope_disconnected_and_marked_people_are_not_written():
    cs = space({"a": OLD, "b": OLD, "c": OLD})
    cs.loc[cs["anchor"] == "a", "in_scope"] = False
    lk = links("abc")
    lk.loc[lk["anchor"] == "b", "connected"] = False
    st = store({"a": NEW, "b": NEW, "c": NEW})
    st.loc[st["profile_id"] == "p-c", "state"] = "marked_for_deletion"
    assert writeback.plan_directory_exports(directory(), cs, lk, st, None).pending.empty


def test_import_only_mappings_plan_nothing():
    plan = writeback.plan_directory_exports(directory("import"), space({"a": OLD}), links("a"), store({"a": NEW}),
                                            None)
    assert plan.pending.empty


def mv_people(anchors) -> pd.DataFrame:
    return pd.DataFrame({"mv_id": [f"p-{a}" for a in anchors], "state": "active", "source_connection": "ad",
                         "source_anchor": list(anchors), "picture": pd.Series([None] * len(anchors), dtype=object)})


@pytest.mark.parametrize(("directory_value", "store_value", "agreed", "mv_value"), [
    (OLD, NEW, OLD, NEW),       # only the profile store changed: its value is kept (written back later)
    (NEW, OLD, OLD, "dir"),     # only the directory changed: the directory's value flows in
    (NEW, OTHER, OLD, "dir"),   # both changed: the directory wins
    (OLD, OLD, OLD, "dir"),     # nothing changed
    (None, NEW, "none", NEW),   # no baseline, the directory has none: the profile store's is kept
    (OLD, NEW, "none", "dir"),  # no baseline, both have one: the directory wins
])
def test_hold_rule(directory_value, store_value, agreed, mv_value):
    people = mv_people("a")
    people["picture"] = pd.Series([directory_value], dtype=object)  # what the import flow computed
    base = baseline({"a": agreed}) if agreed != "none" else None
    out, held = writeback.hold_profile_changes(people, store({"a": store_value}), {"ad": space({"a": directory_value})},
                                               [directory()], {"ad": base})
    expected = directory_value if mv_value == "dir" else mv_value
    assert out.loc[0, "picture"] == expected
    assert held == (0 if mv_value == "dir" else 1)
    assert people.loc[0, "picture"] == directory_value  # the input is not mutated


def test_hold_rule_ignores_export_only_and_other_connections():
    people = mv_people("a")
    out, held = writeback.hold_profile_changes(people, store({"a": NEW}), {"ad": space({"a": None})},
                                               [directory("export")], {"ad": None})
    assert held == 0 and out.loc[0, "picture"] is None
    other = mv_people("a").assign(source_connection="hr")
    assert writeback.hold_profile_changes(other, store({"a": NEW}), {"ad": space({"a": None})},
                                          [directory()], {"ad": None})[1] == 0


def test_merge_baseline_replaces_by_anchor_and_property():
    merged = writeback.merge_baseline(baseline({"a": OLD, "b": OLD}), baseline({"b": NEW, "c": NEW}))
    got = dict(zip(merged["anchor"], merged["value_hash"]))
    assert got == {"a": writeback.value_hash(OLD), "b": writeback.value_hash(NEW), "c": writeback.value_hash(NEW)}


def test_confirm_written_checks_values_and_refreshes_the_space():
    cs = space({"a": OLD, "b": OLD, "c": OLD})
    written = pd.DataFrame({"profile_id": ["p-a", "p-b", "p-c"], "anchor": ["a", "b", "c"],
                            "dn": ["CN=a,DC=x", "CN=b,DC=x", "CN=c,DC=x"], "property": "picture",
                            "attribute": "thumbnailPhoto",
                            "value_hash": [writeback.value_hash(NEW), writeback.value_hash(NEW),
                                           writeback.value_hash(NEW)]})
    reread = space({"a": NEW, "b": OTHER})  # c vanished
    result = writeback.confirm_written(directory(), written, reread, cs)
    assert result.confirmed["anchor"].tolist() == ["a"]
    problems = {p["dn"]: p["problem"] for p in result.mismatches}
    assert "differs" in problems["CN=b,DC=x"] and "not found" in problems["CN=c,DC=x"]
    refreshed = result.space.set_index("anchor")
    assert refreshed.loc["a", PIC] == NEW and refreshed.loc["c", PIC] == OLD and len(refreshed) == 3


@pytest.mark.parametrize(("value", "raw"), [
    (None, None), (float("nan"), None), (b"", None), ("", None), (b"x", b"x"), ("é", "é".encode()),
    (["first", "second"], b"first"), ([], None), (True, b"TRUE"),
])
def test_value_bytes(value, raw):
    assert writeback.value_bytes(value) == raw
