"""Reference targets and membership resolution: one target per DN within a connection (its first object,
that object's first connected link), looked up by one key per connection; a group's members resolve to
connected people and groups, the rest is reported with why."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from profile_sync.directory.dn import normalize_dns
from profile_sync.sync.connector_space import KnownDns
from profile_sync.sync.references import reference_targets, resolve_memberships

A, B, C, G = "cn=a,dc=x", "cn=b,dc=x", "cn=c,dc=x", "cn=g,dc=x"


def _space(rows: list[tuple[str, str, str, bool, list[str] | None]]) -> pd.DataFrame:
    dns = [r[0] for r in rows]
    return pd.DataFrame({
        "dn": pd.Series(dns, dtype=object), "dn_norm": pd.Series(normalize_dns(dns), dtype=object),
        "anchor": pd.Series([r[1] for r in rows], dtype=object),
        "object_type": pd.Series([r[2] for r in rows], dtype=object),
        "in_scope": pd.Series([r[3] for r in rows], dtype=bool),
        "a.member": pd.Series([np.array(r[4], dtype=object) if r[4] else None for r in rows], dtype=object),
    })


def _links(rows: list[tuple[str, str, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame({"connection": [r[0] for r in rows], "anchor": [r[1] for r in rows],
                         "mv_id": [r[2] for r in rows], "connected": pd.Series([r[3] for r in rows], dtype=bool),
                         "object_type": "person"}).astype({"connection": object, "anchor": object, "mv_id": object})


def _dir(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, member_attributes=["member"])


SPACE = _space([
    (A, "A1", "person", True, None),
    ("CN=A,DC=X", "A2", "person", True, None),   # the same DN spelled otherwise: the first object is the target
    (B, "B", "person", False, None),             # out of scope, not connected
    (C, "C", "person", True, None),              # in scope, its link disconnected
    (G, "G", "group", True, [A, B, C, "cn=nobody,dc=x", G]),
])
LINKS = _links([
    ("x", "A1", "m-a", True), ("x", "A1", "m-a-later", True),  # two connected links: the first one's object
    ("x", "C", "m-c", False), ("x", "G", "m-g", True),
    ("y", "A1", "m-y", True),                                   # another connection's anchor A1: not this one
])


def test_one_target_per_dn_its_first_object_and_first_connected_link():
    t = reference_targets({"x": SPACE, "y": SPACE.iloc[0:0]}, LINKS, [_dir("x"), _dir("y")])
    assert list(t.columns) == ["dn_norm", "anchor", "object_type", "in_scope", "connection", "mv_id"]
    assert t["dn_norm"].tolist() == [A, B, C, G]
    assert t["anchor"].tolist() == ["A1", "B", "C", "G"]
    assert t["connection"].tolist() == ["x"] * 4 and t["connection"].dtype == object
    assert t["mv_id"].tolist()[0] == "m-a" and t["mv_id"].tolist()[3] == "m-g"
    assert t["mv_id"].iloc[1:3].isna().all()


def test_a_connection_without_links_has_targets_without_objects():
    t = reference_targets({"x": SPACE}, LINKS.iloc[0:0], [_dir("x")])
    assert len(t) == 4 and t["mv_id"].isna().all()


def test_members_resolve_to_connected_objects_and_the_rest_says_why():
    known = {"x": KnownDns(SPACE)}
    targets = reference_targets({"x": SPACE}, LINKS, [_dir("x")])
    memberships, unresolved = resolve_memberships({"x": SPACE}, LINKS, [_dir("x")], known, targets)
    assert memberships.values.tolist() == [["m-g", "person", "m-a"], ["m-g", "group", "m-g"]]
    assert unresolved[["target_dn", "reason"]].values.tolist() == [
        [B, "out of scope"], [C, "out of scope"], ["cn=nobody,dc=x", "not found in the directory"]]
    assert set(unresolved["source_dn"]) == {G} and set(unresolved["property"]) == {"member"}
