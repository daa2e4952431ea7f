"""sync.delta.changed_objects: which connector-space objects a delta synchronization (and the gate) treats as
changed — found by an index of the anchors, or by a merge where anchors repeat; both must agree."""

from __future__ import annotations

import numpy as np
import pandas as pd

from profile_sync.sync.delta import _changed_objects_by_merge, changed_objects


def _space(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["anchor", "row_hash", "in_scope", "dn_norm", "object_type"])
    return frame.astype({"row_hash": "uint64", "in_scope": bool})


BEFORE = _space([
    ("a", 1, True, "cn=a,dc=x", "person"),     # unchanged
    ("b", 2, True, "cn=b,dc=x", "person"),     # changed: new row hash, renamed
    ("c", 3, True, "cn=c,dc=x", "person"),     # leaves scope
    ("d", 4, True, "cn=d,dc=x", "person"),     # deleted
    ("e", 5, True, None, "group"),             # unchanged, no DN
])
NOW = _space([
    ("e", 5, True, None, "group"),
    ("c", 3, False, "cn=c,dc=x", "person"),
    ("b", 9, True, "cn=b2,dc=x", "person"),
    ("a", 1, True, "cn=a,dc=x", "person"),
    ("f", 6, True, "cn=f,dc=x", "person"),     # added
])


def test_added_changed_deleted_and_scope_changes_with_their_old_and_new_dns():
    anchors, dns = changed_objects(BEFORE, NOW)
    assert anchors == {"b", "c", "d", "f"}
    assert dns == {"cn=b,dc=x", "cn=b2,dc=x", "cn=c,dc=x", "cn=d,dc=x", "cn=f,dc=x"}


def test_row_hashes_differing_in_their_last_bits_are_a_change_on_both_paths():
    """Regression: the outer merge turned the uint64 row hashes into float64 when an object was added or deleted,
    and 2**62 + 1 == 2**62 as floats: a changed object passed as unchanged."""
    before = _space([("a", 2**62, True, "cn=a,dc=x", "person"), ("d", 4, True, "cn=d,dc=x", "person")])
    now = _space([("a", 2**62 + 1, True, "cn=a,dc=x", "person"), ("f", 6, True, "cn=f,dc=x", "person")])
    expected = (frozenset({"a", "d", "f"}), frozenset({"cn=a,dc=x", "cn=d,dc=x", "cn=f,dc=x"}))
    assert changed_objects(before, now) == expected
    assert _changed_objects_by_merge(before, now) == expected


def test_without_a_previous_space_everything_is_changed():
    assert changed_objects(None, NOW) == (frozenset("abcef"), frozenset({"cn=a,dc=x", "cn=b2,dc=x", "cn=c,dc=x",
                                                                          "cn=f,dc=x"}))


def test_repeated_anchors_are_compared_as_the_merge_pairs_them():
    before = pd.concat([BEFORE, BEFORE.iloc[[0]].assign(row_hash=np.uint64(7))], ignore_index=True)  # "a" twice
    anchors, _dns = changed_objects(before, NOW)
    assert "a" in anchors  # one of the two "a" rows differs from the one now
    assert (anchors, _dns) == _changed_objects_by_merge(before, NOW)


def test_the_index_and_the_merge_agree_on_a_large_random_change():
    rng = np.random.default_rng(7)
    n = 5000
    before = _space([(f"id{i}", int(rng.integers(1 << 62)), bool(rng.random() > 0.1),
                      None if i % 97 == 0 else f"cn=p{i},dc=x", "person") for i in range(n)])
    now = before.sample(frac=1.0, random_state=3).reset_index(drop=True)  # another order
    hit = rng.choice(n, 300, replace=False)
    now.loc[hit[:200], "row_hash"] = rng.integers(1 << 62, size=200).astype("uint64")
    now.loc[hit[200:250], "in_scope"] = ~now.loc[hit[200:250], "in_scope"]
    now.loc[hit[250:260], "dn_norm"] = [f"cn=moved{i},dc=x" for i in range(10)]  # a rename changes the row hash too
    now.loc[hit[250:260], "row_hash"] += np.uint64(1)
    now = now.drop(index=hit[260:]).reset_index(drop=True)
    now = pd.concat([now, _space([(f"new{i}", i, True, f"cn=new{i},dc=x", "person") for i in range(25)])],
                    ignore_index=True)
    fast = changed_objects(before, now)
    assert fast == _changed_objects_by_merge(before, now)
    assert len(fast[0]) == 300 + 25  # changed, scope flips, renames and deletes (300), adds (25)


def test_the_import_counts_see_the_same_last_bit_change():
    """import_directory's adds / updates / deletes (run history) had the same float rounding in its merge."""
    from profile_sync.run.steps import _import_counts

    before = _space([("a", 2**62, True, "cn=a,dc=x", "person"), ("d", 4, True, "cn=d,dc=x", "person"),
                     ("e", 5, True, "cn=e,dc=x", "person")])
    now = _space([("a", 2**62 + 1, True, "cn=a,dc=x", "person"), ("e", 5, True, "cn=e,dc=x", "person"),
                  ("f", 6, True, "cn=f,dc=x", "person")])
    assert _import_counts(before, now) == {"adds": 1, "updates": 1, "deletes": 1, "unchanged": 1}


def test_the_import_counts_by_index_agree_with_the_merge():
    """_import_counts looks anchors up when they are unique on both sides and merges otherwise: same counts."""
    from profile_sync.run.steps import _import_counts

    rng = np.random.default_rng(11)
    n = 3000
    before = _space([(f"id{i}", int(rng.integers(1 << 62)), bool(rng.random() > 0.1), f"cn=p{i},dc=x", "person")
                     for i in range(n)])
    now = before.sample(frac=1.0, random_state=5).reset_index(drop=True)
    hit = rng.choice(n, 400, replace=False)
    now.loc[hit[:150], "row_hash"] += np.uint64(1)
    now.loc[hit[150:250], "in_scope"] = ~now.loc[hit[150:250], "in_scope"]
    now = now.drop(index=hit[250:]).reset_index(drop=True)
    now = pd.concat([now, _space([(f"new{i}", i, True, f"cn=new{i},dc=x", "person") for i in range(40)])],
                    ignore_index=True)
    fast = _import_counts(before, now)
    b = before.loc[before["in_scope"]].set_index("anchor")["row_hash"]
    w = now.loc[now["in_scope"]].set_index("anchor")["row_hash"]
    both = b.index.intersection(w.index)
    assert fast == {"adds": len(w.index.difference(b.index)), "updates": int((b[both] != w[both]).sum()),
                    "deletes": len(b.index.difference(w.index)), "unchanged": int((b[both] == w[both]).sum())}
    assert min(fast.values()) >= 40
    same = next(a for a in both if b[a] == w[a])
    twice = pd.concat([now, now.loc[now["anchor"] == same]], ignore_index=True)  # a duplicate anchor: the merge
    assert _import_counts(before, twice) == {**fast, "unchanged": fast["unchanged"] + 1}
