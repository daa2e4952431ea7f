"""Planning a push (pure pandas): which profile a listed person is, what is written, what is flagged."""

from __future__ import annotations

import pandas as pd
import pytest

from profile_sync.config.properties import BUILTIN_PROPERTIES
from profile_sync.config.sites import SiteGateLimits
from profile_sync.gates.report import GateOverride
from profile_sync.sites.config import SYNC_TO_SITES, SYNCED
from profile_sync.sites.gate import site_gate
from profile_sync.sites.plan import plan_site_push
from profile_sync.sites.profiles import PROFILE_COLUMNS
from profile_sync.sites.site_list import ROW_COLUMNS

NOW = "2026-03-01T10:00:00+00:00"


def profile(pid: str, name: str, state: str = "active", updated: str = NOW, **props) -> dict:
    row = {c: None for c in PROFILE_COLUMNS}
    row.update(profile_id=pid, account_name=name, state=state, updated_at=updated, title=f"title of {pid}", **props)
    return row


def listed(name: str, pid: str | None = None, synced: bool = True, deleted: bool = False, **props) -> dict:
    row = {c: None for c in ROW_COLUMNS}
    row.update(account_name=name, profile_id=pid, deleted=deleted, last_synced=NOW if synced else None, **props)
    return row


def plan(rows: list[dict], profiles: list[dict], full: bool = False, keys: list[str] | None = None):
    rows_f = pd.DataFrame(rows, columns=ROW_COLUMNS, dtype=object)
    prof_f = pd.DataFrame(profiles, columns=PROFILE_COLUMNS, dtype=object)
    all_keys = pd.Series(keys if keys is not None else [r["account_name"] for r in rows], dtype=object)
    return plan_site_push(rows_f, prof_f, all_keys, full=full)


def written(p) -> dict:
    return {r["_site_key"]: r for r in p.writes.to_dict("records")}


def test_the_seed_table_classifies_every_builtin_property():
    assert set(SYNC_TO_SITES) == set(BUILTIN_PROPERTIES)
    assert not SYNC_TO_SITES["public_site_redirect"] and not SYNC_TO_SITES["hide_from_address_lists"]
    assert set(SYNCED) == {"account_name", "user_name", "user_principal_name", "preferred_name", "first_name",
                           "last_name", "work_phone", "work_email", "sip_address", "office", "title", "job_title",
                           "department", "language_preferences", "manager"}


def test_a_new_listed_person_gets_their_profile_and_a_guest_is_left_alone():
    p = plan([listed("jane", synced=False), listed("guest", synced=False)], [profile("p1", "Jane")])
    assert p.stats["matched"] == 1 and p.stats["unmatched"] == 1 and p.stats["first_synced"] == 1
    w = written(p)
    assert list(w) == ["jane"]  # matched case-insensitively; the key keeps the site's spelling
    assert (w["jane"]["profile_id"], w["jane"]["title"], w["jane"]["deleted"]) == ("p1", "title of p1", False)
    assert p.samples["unmatched"] == [{"account_name": "guest"}]


def test_incremental_writes_only_differences_and_full_writes_everyone():
    rows = [listed("a", "p1", title="title of p1"), listed("b", "p2", title="stale")]
    profiles = [profile("p1", "a"), profile("p2", "b")]
    inc = plan(rows, profiles)
    assert list(written(inc)) == ["b"]
    assert (inc.stats["updates"], inc.stats["unchanged"]) == (1, 1)
    assert sorted(written(plan(rows, profiles, full=True))) == ["a", "b"]


def test_null_and_value_compare_null_safely():
    rows = [listed("a", "p1", title="title of p1", office=None), listed("b", "p2", title="title of p2",
                                                                       office="HQ")]
    p = plan(rows, [profile("p1", "a", office=None), profile("p2", "b", office=None)])
    assert list(written(p)) == ["b"] and written(p)["b"]["office"] is None


def test_marked_profiles_flag_deleted_and_returners_are_unflagged():
    rows = [listed("a", "p1", title="title of p1"), listed("b", "p2", title="title of p2", deleted=True)]
    p = plan(rows, [profile("p1", "a", state="marked_for_deletion"), profile("p2", "b")])
    w = written(p)
    assert w["a"]["deleted"] is True and w["b"]["deleted"] is False
    assert (p.stats["deletes"], p.stats["restores"]) == (1, 1)
    assert p.flagged.to_dict("records") == [{"account_name": "a", "profile_id": "p1"}]


def test_a_renamed_person_keeps_the_row_and_takes_the_new_name():
    p = plan([listed("old", "p1", title="title of p1")], [profile("p1", "new")])
    w = written(p)
    assert w["old"]["account_name"] == "new"
    assert p.stats["renames"] == 1


def test_a_change_of_case_alone_is_no_rename():
    p = plan([listed("Jane", "p1", title="title of p1")], [profile("p1", "jane")])
    assert p.stats["renames"] == 0 and p.writes.empty


def test_a_rename_onto_a_name_the_list_holds_is_a_conflict():
    rows = [listed("old", "p1", title="x"), listed("new", None, synced=False)]
    p = plan(rows, [profile("p1", "new")])
    w = written(p)
    assert w["old"]["account_name"] == "old" and w["old"]["title"] == "title of p1"  # updated, not renamed
    assert w["new"]["profile_id"] == "p1"
    assert p.stats["rename_conflicts"] == 1
    assert p.samples["rename_conflicts"] == [{"account_name": "old", "new_account_name": "new"}]


def test_the_row_follows_its_own_profile_before_a_namesake():
    """Person p1 was renamed away from 'jo' and a new person p2 is now 'jo': the row follows p1."""
    p = plan([listed("jo", "p1", title="title of p1")], [profile("p1", "jo.smith"), profile("p2", "jo")])
    assert written(p)["jo"]["profile_id"] == "p1"


def test_a_recreated_person_takes_over_the_row_of_their_marked_profile():
    """p1 was deleted (marked) and re-created as p2 with the same account name: the row moves to p2."""
    p = plan([listed("jo", "p1", title="title of p1")],
             [profile("p1", "jo", state="marked_for_deletion"), profile("p2", "jo")])
    w = written(p)
    assert (w["jo"]["profile_id"], w["jo"]["deleted"]) == ("p2", False)
    assert p.stats["relinked"] == 1


def test_of_several_marked_namesakes_the_latest_wins():
    p = plan([listed("jo", None, synced=False)],
             [profile("p1", "jo", state="marked_for_deletion", updated="2026-01-01T00:00:00+00:00"),
              profile("p2", "jo", state="marked_for_deletion", updated="2026-02-01T00:00:00+00:00")])
    assert written(p)["jo"]["profile_id"] == "p2"


@pytest.mark.parametrize(("flagged", "listed_n", "limits", "passes"), [
    (5, 100, {}, True),
    (12, 100, {}, False),  # 12 % > 5 %, and more than 10
    (12, 100, {"max_delete_percent": None}, True),
    (10, 20, {"min_count_for_percent_limits": 10}, True),  # not more than 10 affected
    (11, 20, {"min_count_for_percent_limits": 10}, False),
    (3, 10, {"max_deletes": 2, "max_delete_percent": None}, False),
])
def test_the_site_gate(flagged, listed_n, limits, passes):
    rows = [listed(f"u{i}", f"p{i}", title=f"title of p{i}") for i in range(listed_n)]
    profiles = [profile(f"p{i}", f"u{i}", state="marked_for_deletion" if i < flagged else "active")
                for i in range(listed_n)]
    p = plan(rows, profiles)
    report = site_gate("intranet", p, listed_n, SiteGateLimits(**limits))
    assert report.passed is passes
    check = report.checks[0]
    assert (check.name, check.connection, check.observed["flagged"]) == ("site_deletes", "intranet", flagged)
    assert len(check.samples) == (0 if passes else min(flagged, 20))
    if not passes:
        overridden = site_gate("intranet", p, listed_n, SiteGateLimits(**limits),
                               GateOverride("admin", "planned", NOW))
        assert overridden.allows_export and overridden.overridden_by == "admin"
