"""Delta equals full, as a property: random sequences of directory changes, synchronized
incrementally after each step, land exactly where full synchronizations land.

Two stores follow the same sequence: one with incremental runs, one with full runs.
After every step they must hold the same rows (every column but timestamps) and the
same memberships; at the end both are compared with a fresh full run on the final
directory (active profiles and memberships: a fresh store has no history of marks).

``PROFILE_SYNC_DELTA_STEPS`` sets the sequence length (default 12) for longer runs.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace

import pandas as pd
import pytest

from profile_sync.sample import generate, write_ldif
from profile_sync.sample.model import Person

from tests.helpers.delta import NO_LIMITS, assert_same, snapshot, unresolved_rows
from tests.helpers.sync import SyncHarness

STEPS = int(os.environ.get("PROFILE_SYNC_DELTA_STEPS", "12"))
SCOPE = {"containers": ["DC=contoso,DC=com"], "excluded_containers": ["OU=Service Accounts,DC=contoso,DC=com"]}
IN_SCOPE_OUS = [("Sales", "Users"), ("Engineering", "Users"), ("Finance", "Users"), ("Legal", "Users")]
OUTSIDE = ("Service Accounts",)


class Changes:
    """The change kinds: each mutates the model and returns a label."""

    def __init__(self, rnd: random.Random, directory) -> None:  # noqa: ANN001
        self.rnd = rnd
        self.d = directory
        self.serial = 0
        self.removed: list[Person] = []

    def _person(self) -> Person:
        return self.rnd.choice(self.d.people)

    def add(self) -> str:
        self.serial += 1
        template = self._person()
        p = replace(template, key=f"new{self.serial}", cn=f"New Person {self.serial}",
                    guid=self.rnd.randbytes(16), sam_account_name=f"new{self.serial}",
                    user_principal_name=f"new{self.serial}@contoso.com", mail=f"new{self.serial}@contoso.com",
                    proxy_addresses=[f"SMTP:new{self.serial}@contoso.com"], manager_key=template.key,
                    dangling_manager=None, photo=None, container=self.rnd.choice(IN_SCOPE_OUS))
        self.d.people.append(p)
        return f"add {p.key}"

    def modify(self) -> str:
        p = self._person()
        field = self.rnd.choice(["title", "telephone_number", "department", "upn", "proxy"])
        if field == "upn":
            p.user_principal_name = f"renamed{self.rnd.randrange(10**6)}@contoso.com"
        elif field == "proxy":
            p.proxy_addresses = [f"SMTP:{self.rnd.randrange(10**6)}@contoso.com", "SIP:x@contoso.com"]
        else:
            setattr(p, field, f"{field} {self.rnd.randrange(1000)}")
        return f"modify {p.key}.{field}"

    def rename(self) -> str:
        p = self._person()
        p.cn = f"{p.cn} Renamed{self.rnd.randrange(1000)}"
        return f"rename {p.key}"

    def move(self) -> str:
        p = self._person()
        p.container = self.rnd.choice(IN_SCOPE_OUS)
        return f"move {p.key}"

    def move_out_of_scope(self) -> str:
        p = self._person()
        p.container = OUTSIDE
        return f"move out of scope {p.key}"

    def create_outside(self) -> str:
        """A new person out of scope (the excluded container): a member of a group, someone's manager."""
        label = self.add()
        p = self.d.people[-1]
        p.container = OUTSIDE
        self.rnd.choice(self.d.groups).member_keys.append(p.key)
        report = self._person()
        if report.key != p.key:
            report.manager_key, report.dangling_manager = p.key, None
        return f"create outside {label.split()[-1]}"

    def move_back_in(self) -> str:
        """Out of scope (moved out, or created there) → back in scope."""
        away = [p for p in self.d.people if p.container == OUTSIDE]
        if not away:
            return self.move_out_of_scope()
        p = self.rnd.choice(away)
        p.container = self.rnd.choice(IN_SCOPE_OUS)
        return f"move back in {p.key}"

    def disable(self) -> str:
        p = self._person()
        p.disable()
        return f"disable {p.key}"

    def enable(self) -> str:
        disabled = [p for p in self.d.people if p.disabled]
        if not disabled:
            return self.disable()
        p = self.rnd.choice(disabled)
        p.enable()
        return f"enable {p.key}"

    def delete(self) -> str:
        p = self._person()
        self.removed.append(self.d.delete_person(p.key, references=self.rnd.choice(["remove", "dangle"])))
        return f"delete {p.key}"

    def recreate_same_name(self) -> str:
        if not self.removed:
            return self.delete()
        old = self.removed.pop(self.rnd.randrange(len(self.removed)))
        self.serial += 1
        if any(p.key == old.key for p in self.d.people):
            return "noop"
        fresh = replace(old, key=f"{old.key}r{self.serial}", guid=self.rnd.randbytes(16), manager_key=None,
                        dangling_manager=None)  # a new object: new objectGUID, same name
        self.d.people.append(fresh)
        return f"re-create {old.key} as {fresh.key}"

    def manager(self) -> str:
        p = self._person()
        other = self._person()
        p.manager_key = None if other.key == p.key else other.key
        p.dangling_manager = None
        return f"manager {p.key} -> {p.manager_key}"

    def membership(self) -> str:
        g = self.rnd.choice(self.d.groups)
        p = self._person()
        if p.key in g.member_keys:
            g.member_keys.remove(p.key)
            return f"leave {p.key} {g.key}"
        g.member_keys.append(p.key)
        return f"join {p.key} {g.key}"

    def join_and_leave(self) -> str:
        # Added to and removed from a group between two runs: nothing to see.
        g = self.rnd.choice(self.d.groups)
        p = self._person()
        if p.key not in g.member_keys:
            g.member_keys.append(p.key)
            g.member_keys.remove(p.key)
        return f"join+leave {p.key} {g.key}"

    KINDS = ["add", "modify", "rename", "move", "move_out_of_scope", "disable", "enable", "delete",
             "recreate_same_name", "manager", "membership", "join_and_leave", "create_outside", "move_back_in"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_delta_equals_full(tmp_path, seed):
    rnd = random.Random(seed)
    directory = generate(people=60, groups=8, seed=seed)
    inc = SyncHarness(tmp_path / "incremental", directory=SCOPE, gates=NO_LIMITS)
    full = SyncHarness(tmp_path / "full", directory=SCOPE, gates=NO_LIMITS)
    changes = Changes(rnd, directory)

    def run_both(label: str) -> None:
        write_ldif(directory, inc.ldif)
        write_ldif(directory, full.ldif)
        out = inc.sync(mode="incremental")
        full.sync(mode="full")
        assert_same(snapshot(inc), snapshot(full), label)
        # The references that do not resolve: the same rows in the same order (the last run's rows of the
        # people a delta does not recompute, and the recomputed people's, merged in the full run's order).
        assert unresolved_rows(inc) == unresolved_rows(full), f"unresolved references differ after {label}"
        return out

    run_both("the first run")
    history = []
    for step in range(STEPS):
        labels = [getattr(changes, rnd.choice(Changes.KINDS))() for _ in range(rnd.randint(1, 3))]
        if rnd.random() < 0.2:
            # Someone edits a property the directory owns, in the profile store.
            inc.execute("UPDATE user_profiles SET title = 'edited in the store' WHERE profile_id IN "
                        "(SELECT profile_id FROM user_profiles WHERE state = 'active' LIMIT 1)")
            full.execute("UPDATE user_profiles SET title = 'edited in the store' WHERE profile_id IN "
                         "(SELECT profile_id FROM user_profiles WHERE state = 'active' LIMIT 1)")
            labels.append("store edit")
        history.append(labels)
        out = run_both(f"step {step}: {labels} (history {history})")
        assert out["synchronize"]["delta"] is True, "the incremental run fell back to a full one"

    fresh = SyncHarness(tmp_path / "fresh", directory=SCOPE, gates=NO_LIMITS)
    write_ldif(directory, fresh.ldif)
    fresh.sync(mode="full")
    mine, theirs = snapshot(inc), snapshot(fresh)
    active = mine[0].loc[mine[0]["state"] == "active"].reset_index(drop=True)
    pd.testing.assert_frame_equal(active, theirs[0], check_dtype=False, obj="active profiles vs a fresh full run")
    assert mine[2] == theirs[2]


def test_incremental_reads_only_what_changed(tmp_path):
    directory = generate(people=200, groups=10, seed=5)
    h = SyncHarness(tmp_path, directory=SCOPE)
    write_ldif(directory, h.ldif)
    h.sync(mode="full")
    directory.people[10].title = "Changed"
    write_ldif(directory, h.ldif)
    out = h.sync(mode="incremental")
    assert out["start_run"]["mode"] == "incremental"
    assert out["import_profile_store"]["delta"] is True
    assert out["synchronize"]["delta"] is True
    assert out["synchronize"]["recomputed_people"] < 10
    assert out["export_profile_store"]["updates"] == 1
    unchanged = h.sync(mode="incremental")
    assert unchanged["import_directory[contoso]"]["unchanged_source"] is True
    assert unchanged["synchronize"]["recomputed_people"] == 0


def test_the_profile_store_delta_sees_edits_by_others_not_its_own_writes(tmp_path, profile_store_url):
    """The change log (triggers) on both backends: an edit made in the store is read by the next
    delta import and repaired (the directory owns ``title``); the export's own writes are not logged."""
    directory = generate(people=30, groups=4, seed=7)
    h = SyncHarness(tmp_path, profile_store_url=profile_store_url, directory=SCOPE)
    try:
        write_ldif(directory, h.ldif)
        h.sync(mode="full")
        quiet = h.sync(mode="incremental")
        assert quiet["import_profile_store"]["delta"] is True
        assert quiet["import_profile_store"]["changed_in_store"] == 0  # the first run's 30 adds are not logged
        # Nothing in the change log: the committed connector space stands, unread; its counts are reported.
        assert quiet["import_profile_store"]["unchanged_in_store"] is True
        assert quiet["import_profile_store"]["people"] == len(h.profiles())
        people = h.profiles()
        person = people.loc[(people["state"] == "active") & people["title"].notna()].iloc[0]
        h.execute("UPDATE user_profiles SET title = 'edited in the store' WHERE profile_id = :pid",
                  pid=person["profile_id"])
        out = h.sync(mode="incremental")
        assert out["import_profile_store"]["delta"] is True
        assert out["import_profile_store"]["changed_in_store"] == 1
        assert "unchanged_in_store" not in out["import_profile_store"]
        assert out["export_profile_store"]["updates"] == 1
        assert h.profiles().loc[person["profile_id"], "title"] == person["title"]
        after = h.sync(mode="incremental")
        assert after["import_profile_store"]["changed_in_store"] == 0  # the repair itself was not logged
        assert after["export_profile_store"]["updates"] == 0
    finally:
        h.close()
