"""Which unchanged objects a delta import re-reads: those whose manager / member values name an old DN."""

from __future__ import annotations

import numpy as np
import pandas as pd

from profile_sync.sync.delta import entering_scope, stale_references

PEOPLE = "OU=People,DC=contoso,DC=com"


def _space(rows: list[tuple[str, str, str | None, list[str] | None]]) -> pd.DataFrame:
    """A connector space with the columns stale_references reads: anchor, dn, dn_norm, manager, member."""
    frame = pd.DataFrame(rows, columns=["anchor", "dn", "manager", "member"])
    frame["dn_norm"] = frame["dn"].str.lower().str.replace(" ", "", regex=False)
    # Parquet hands lists back as numpy arrays: the function must take both.
    frame["member"] = frame["member"].map(lambda v: np.array(v, dtype=object) if isinstance(v, list) else v)
    return frame


def _previous() -> pd.DataFrame:
    return _space([
        ("a1", f"CN=Ann,{PEOPLE}", None, None),
        ("a2", f"CN=Bob,{PEOPLE}", f"CN=Ann,{PEOPLE}", None),          # reports to Ann
        ("a3", f"CN=Cy,{PEOPLE}", f"cn=dee, {PEOPLE.lower()}", None),   # reports to Dee (other spelling)
        ("a4", f"CN=Dee,{PEOPLE}", None, None),
        ("g1", "CN=Staff,OU=Groups,DC=contoso,DC=com", None, [f"CN=Bob,{PEOPLE}", f"CN=Ann,{PEOPLE}"]),
        ("g2", "CN=Ops,OU=Groups,DC=contoso,DC=com", None, [f"CN=Cy,{PEOPLE}"]),
        ("g3", "CN=Empty,OU=Groups,DC=contoso,DC=com", None, []),
    ])


def test_a_rename_marks_the_reports_and_groups_that_name_the_old_dn():
    changed = _space([("a1", f"CN=Ann Smith,{PEOPLE}", None, None)])
    stale = stale_references(_previous(), changed, [], [], ["manager"], ["member"])
    assert sorted(stale) == sorted([f"CN=Bob,{PEOPLE}", "CN=Staff,OU=Groups,DC=contoso,DC=com"])


def test_a_delete_by_anchor_or_by_dn_marks_whoever_names_it_in_any_spelling():
    by_anchor = stale_references(_previous(), _space([]), ["a4"], [], ["manager"], ["member"])
    by_dn = stale_references(_previous(), _space([]), [], [f"cn=DEE,{PEOPLE}"], ["manager"], ["member"])
    assert by_anchor == by_dn == [f"CN=Cy,{PEOPLE}"]


def test_a_member_that_was_deleted_marks_only_its_groups():
    stale = stale_references(_previous(), _space([]), ["a3"], [], ["manager"], ["member"])
    assert stale == ["CN=Ops,OU=Groups,DC=contoso,DC=com"]


def test_objects_already_in_the_delta_and_unrelated_changes_are_not_re_read():
    # Bob changed (read anyway), and a change that keeps the DN names no old DN.
    changed = _space([("a1", f"CN=Ann,{PEOPLE}", None, None), ("a2", f"CN=Bob,{PEOPLE}", None, None)])
    assert stale_references(_previous(), changed, [], [], ["manager"], ["member"]) == []
    moved = _space([("a1", f"CN=Ann,OU=Moved,{PEOPLE}", None, None), ("a2", f"CN=Bob,{PEOPLE}", None, None)])
    assert stale_references(_previous(), moved, [], [], ["manager"], ["member"]) == [
        "CN=Staff,OU=Groups,DC=contoso,DC=com"]


def test_objects_entering_scope_are_new_or_were_out_of_scope():
    previous = _previous().assign(in_scope=True)
    previous.loc[previous["anchor"] == "a4", "in_scope"] = False       # Dee was in an excluded container
    changed = _space([
        ("a4", f"CN=Dee,{PEOPLE}", None, None),                         # moved in from the excluded container
        ("a5", f"CN=Eve,{PEOPLE}", None, None),                         # new: created outside, moved in
        ("a6", "CN=Fay,CN=Users,DC=contoso,DC=com", None, None),        # new, but out of scope
        ("a1", f"CN=Ann,OU=Moved,{PEOPLE}", None, None),                # moved within scope: known DN
    ]).assign(in_scope=[True, True, False, True])
    assert entering_scope(previous, changed) == [f"CN=Dee,{PEOPLE}", f"CN=Eve,{PEOPLE}"]
