"""Delta equals full, as a property, against real directories: OpenLDAP (entryCSN + accesslog) and
Samba AD (DirSync, and uSNChanged).

One server, two harnesses reading it: ``inc`` synchronizes incrementally after every step, ``full``
synchronizes in full. A step is one to three random changes made with ldap3 on the live server (add,
modify, rename, move between containers, move out of scope, disable/enable, delete, re-create at the
same DN with a new anchor, manager change or removal, membership add/remove, join-and-leave between two
runs, store edits), and returners: a person created outside the selected containers (a member of a group
inside them and someone's manager), moved in later; a person moved out of scope, then back in. A "full
run" step makes ``inc`` also run a full synchronization after its incremental one, as the weekly schedule
does: it forgets the DNs of people outside the containers (a full import reads only the containers), so a
returner moved in afterwards is new to the connector space while the server's referential integrity has
rewritten the groups and reports that name them, unreported. Two outsiders are created before the first
run for the same reason. After every step both profile stores must hold the same rows (every column but
timestamps) and the same memberships, and every incremental run must have read a delta.

slapd here runs without refint (the default test server): deleting or renaming a person leaves their
old DN in ``member`` and ``manager`` values, a dangling reference that a full read sees as unresolved
and that resolves again when an object takes that DN. One slapd variant loads refint + memberof, which
rewrite those values as AD does.

``PROFILE_SYNC_LDAP_DELTA_STEPS`` sets the sequence length (default 8; 6 for Samba's uSNChanged variant).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections import Counter
from typing import Any

import ldap3
import pandas as pd
import pytest

from tests.helpers.delta import NO_LIMITS, assert_same, snapshot
from tests.helpers.ldap import LdapSyncHarness, samba_info, slapd_info
from tests.servers.fixtures import default_slapd_entries

pytestmark = pytest.mark.timeout(600)
STEPS = os.environ.get("PROFILE_SYNC_LDAP_DELTA_STEPS")


class LiveChanges:
    """Random changes on a live directory; each returns a label. Subclasses know the server's dialect."""

    KINDS = ["add", "modify", "rename", "move", "move_out_of_scope", "disable", "enable", "delete",
             "recreate_same_dn", "manager", "membership", "join_and_leave", "create_outside", "move_back_in",
             "full_run"]
    ORDER = (("delete", "recreate_same_dn"), ("disable", "enable"), ("move_out_of_scope", "move_back_in"),
             ("create_outside", "move_back_in"), ("full_run", "move_back_in"))
    """Kinds drawn before others in every deck."""
    parents: list[str]  # in-scope containers for people
    out_of_scope: list[str]  # an excluded container, and one outside the selected containers
    outside: str  # the container outside the selected ones (a full import never reads it)
    groups: list[str]

    def __init__(self, rnd: random.Random, conn: ldap3.Connection, people: list[str]) -> None:
        self.rnd = rnd
        self.conn = conn
        self.people = list(people)  # every person that exists, wherever it is
        self.removed: list[tuple[str, dict[str, Any]]] = []
        self.disabled: set[str] = set()
        self.away: dict[str, str] = {}
        """People out of scope by their container (DN → "moved out" | "created outside")."""
        self.forgotten: set[str] = set()
        """Of those, the ones outside the containers since before the last full run of ``inc``."""
        self.full_run_due = False
        self.serial = 0

    # -- helpers -------------------------------------------------------------------------------
    def draw(self) -> str:
        """The next change kind: from a shuffled deck of every kind (so a short sequence still has each one),
        with deletes before re-creations and disables before re-enables."""
        if not getattr(self, "_deck", None):
            deck = list(self.KINDS)
            self.rnd.shuffle(deck)
            for first, then in self.ORDER:
                i, j = deck.index(first), deck.index(then)
                if j < i:
                    deck[i], deck[j] = deck[j], deck[i]
            self._deck = deck
        return self._deck.pop(0)

    def ok(self, done: bool) -> None:
        assert done, self.conn.result

    def person(self) -> str:
        return self.rnd.choice(self.people)

    def members(self, group: str) -> list[str]:
        self.conn.search(group, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["member"])
        return [m for m in self.conn.response[0]["attributes"].get("member", [])]

    def _move(self, dn: str, parent: str) -> str:
        rdn = dn.split(",", 1)[0]
        self.ok(self.conn.modify_dn(dn, rdn, new_superior=parent))
        new = f"{rdn},{parent}"
        self._renamed(dn, new)
        return new

    def _renamed(self, old: str, new: str) -> None:
        self.people[self.people.index(old)] = new
        if old in self.disabled:
            self.disabled.discard(old)
            self.disabled.add(new)
        origin = self.away.pop(old, None)
        forgotten = old in self.forgotten
        self.forgotten.discard(old)
        if origin and self.out_of_containers(new):
            self.away[new] = origin
            if forgotten and new.lower().endswith("," + self.outside.lower()):
                self.forgotten.add(new)

    def out_of_containers(self, dn: str) -> bool:
        return any(dn.lower().endswith("," + c.lower()) for c in self.out_of_scope)

    def forget(self) -> None:
        """``inc`` ran in full: people outside the containers are no longer in its connector space."""
        self.forgotten = {dn for dn in self.away if dn.lower().endswith("," + self.outside.lower())}

    # -- the change kinds ----------------------------------------------------------------------
    def add(self) -> str:
        self.serial += 1
        dn = self.new_person(self.rnd.choice(self.parents), f"n{self.serial}", self.person())
        self.people.append(dn)
        return f"add {dn}"

    def rename(self) -> str:
        dn = self.person()
        self.serial += 1
        rdn_attr, value = dn.split(",", 1)[0].split("=", 1)
        new_rdn = f"{rdn_attr}={value}-r{self.serial}"
        self.ok(self.conn.modify_dn(dn, new_rdn))
        new = f"{new_rdn},{dn.split(',', 1)[1]}"
        self._renamed(dn, new)
        return f"rename {dn} -> {new_rdn}"

    def move(self) -> str:
        dn = self.person()
        parent = self.rnd.choice([p for p in self.parents if dn.split(",", 1)[1].lower() != p.lower()])
        return f"move {dn} -> {self._move(dn, parent)}"

    def move_out_of_scope(self) -> str:
        dn = self.rnd.choice([p for p in self.people if not self.out_of_containers(p)] or self.people)
        parent = self.rnd.choice(self.out_of_scope)
        if dn.split(",", 1)[1].lower() == parent.lower():
            return self.move()
        new = self._move(dn, parent)
        self.away[new] = "moved out"
        return f"move out of scope {dn} -> {new}"

    def create_outside(self) -> str:
        """A new person outside the containers: a member of a group inside them and someone's manager."""
        self.serial += 1
        dn = self.new_person(self.outside, f"o{self.serial}", self.person())
        self.people.append(dn)
        self.away[dn] = "created outside"
        group = self.rnd.choice(self.groups)
        self.ok(self.conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [dn])]}))
        report = self.rnd.choice([p for p in self.people if not self.out_of_containers(p)])
        self.ok(self.conn.modify(report, {"manager": [(ldap3.MODIFY_REPLACE, [dn])]}))
        return f"create outside {dn} (in {group}, manager of {report})"

    def move_back_in(self) -> str:
        """A person out of scope by their container moves into one: back (moved out before), or in (created
        outside). Mostly one whose outside DN ``inc`` forgot in a full run."""
        if not self.away:
            return self.move_out_of_scope()
        forgotten = sorted(self.forgotten & set(self.away))
        dn = self.rnd.choice(forgotten if forgotten and self.rnd.random() < 0.75 else sorted(self.away))
        origin = self.away[dn]
        new = self._move(dn, self.rnd.choice(self.parents))
        how = "move back in" if origin == "moved out" else "move in (created outside)"
        return f"{how}{' (forgotten)' if dn in forgotten else ''} {dn} -> {new}"

    def full_run(self) -> str:
        """After this step's incremental run, ``inc`` also runs in full (the weekly full synchronization)."""
        self.full_run_due = True
        return "full run"

    def seed_outsiders(self, n: int = 2) -> None:
        """People created outside the containers before the first run: never in ``inc``'s connector space."""
        for _ in range(n):
            self.create_outside()
        self.forget()

    def disable(self) -> str:
        dn = self.person()
        self.set_disabled(dn, True)
        self.disabled.add(dn)
        return f"disable {dn}"

    def enable(self) -> str:
        if not self.disabled:
            return self.disable()
        dn = self.rnd.choice(sorted(self.disabled))
        self.set_disabled(dn, False)
        self.disabled.discard(dn)
        return f"enable {dn}"

    def delete(self) -> str:
        dn = self.person()
        self.removed.append((dn, self.recreate_attributes(dn)))
        self.ok(self.conn.delete(dn))
        self.people.remove(dn)
        self.disabled.discard(dn)
        self.away.pop(dn, None)
        self.forgotten.discard(dn)
        return f"delete {dn}"

    def recreate_same_dn(self) -> str:
        if not self.removed:
            return self.delete()
        dn, attrs = self.removed.pop(self.rnd.randrange(len(self.removed)))
        if dn in self.people:  # something else took the DN meanwhile
            return "noop"
        self.ok(self.conn.add(dn, attributes=attrs))  # a new object: new anchor, same DN
        self.people.append(dn)
        if self.out_of_containers(dn):
            self.away[dn] = "created outside"
        return f"re-create {dn}"

    def manager(self) -> str:
        dn, other = self.person(), self.person()
        if other == dn or self.rnd.random() < 0.3:
            self.ok(self.conn.modify(dn, {"manager": [(ldap3.MODIFY_REPLACE, [])]}))
            return f"manager of {dn} removed"
        self.ok(self.conn.modify(dn, {"manager": [(ldap3.MODIFY_REPLACE, [other])]}))
        return f"manager {dn} -> {other}"

    def membership(self) -> str:
        group, dn = self.rnd.choice(self.groups), self.person()
        present = dn.lower() in {m.lower() for m in self.members(group)}
        self.ok(self.conn.modify(group, {"member": [(ldap3.MODIFY_DELETE if present else ldap3.MODIFY_ADD, [dn])]}))
        return f"{'leave' if present else 'join'} {dn} {group}"

    def join_and_leave(self) -> str:
        group, dn = self.rnd.choice(self.groups), self.person()
        if dn.lower() in {m.lower() for m in self.members(group)}:
            self.ok(self.conn.modify(group, {"member": [(ldap3.MODIFY_DELETE, [dn])]}))
            self.ok(self.conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [dn])]}))
            return f"leave+join {dn} {group}"
        self.ok(self.conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [dn])]}))
        self.ok(self.conn.modify(group, {"member": [(ldap3.MODIFY_DELETE, [dn])]}))
        return f"join+leave {dn} {group}"

    # -- dialect ---------------------------------------------------------------------------------
    def new_person(self, parent: str, name: str, manager: str) -> str:
        raise NotImplementedError

    def modify(self) -> str:
        raise NotImplementedError

    def set_disabled(self, dn: str, disabled: bool) -> None:
        raise NotImplementedError

    def recreate_attributes(self, dn: str) -> dict[str, Any]:
        raise NotImplementedError


class SlapdChanges(LiveChanges):
    """inetOrgPerson has no disabled flag: the connection filter ``(!(employeeType=disabled))`` plays it."""

    BASE = "dc=example,dc=org"
    PEOPLE = f"ou=people,{BASE}"
    GROUPS = f"ou=groups,{BASE}"
    EXCLUDED = f"ou=excluded,{PEOPLE}"
    parents = [PEOPLE, f"ou=sales,{PEOPLE}", f"ou=engineering,{PEOPLE}"]
    outside = f"ou=elsewhere,{BASE}"
    out_of_scope = [EXCLUDED, outside]
    groups = [f"cn=everyone,{GROUPS}", f"cn=managers,{GROUPS}"]
    DIRECTORY = {"name": "openldap", "preset": "inetorgperson", "containers": [PEOPLE, GROUPS],
                 "excluded_containers": [EXCLUDED], "filter": "(!(employeeType=disabled))"}

    def setup(self) -> None:
        for ou in (*self.parents[1:], *self.out_of_scope):
            self.ok(self.conn.add(ou, ["organizationalUnit"], {"ou": ou.split(",")[0].split("=")[1]}))
        self.seed_outsiders()

    def new_person(self, parent: str, name: str, manager: str) -> str:
        dn = f"uid={name},{parent}"
        self.ok(self.conn.add(dn, ["inetOrgPerson"], {"uid": name, "cn": f"New {name}", "sn": name,
                                                      "mail": f"{name}@example.org", "title": "New",
                                                      "manager": manager}))
        return dn

    def modify(self) -> str:
        dn = self.person()
        attr = self.rnd.choice(["title", "telephoneNumber", "departmentNumber", "mail", "displayName"])
        self.serial += 1
        value = f"m{self.serial}@example.org" if attr == "mail" else f"{attr} {self.rnd.randrange(1000)}"
        self.ok(self.conn.modify(dn, {attr: [(ldap3.MODIFY_REPLACE, [value])]}))
        return f"modify {dn}.{attr}"

    def set_disabled(self, dn: str, disabled: bool) -> None:
        self.ok(self.conn.modify(dn, {"employeeType": [(ldap3.MODIFY_REPLACE, ["disabled"] if disabled else [])]}))

    def recreate_attributes(self, dn: str) -> dict[str, Any]:
        uid = dn.split(",", 1)[0].split("=", 1)[1]
        self.conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["mail"])
        mail = self.conn.response[0]["attributes"].get("mail") or [f"{uid}@example.org"]
        return {"objectClass": ["inetOrgPerson"], "uid": uid, "cn": f"Again {uid}", "sn": uid, "mail": mail[0]}


class SambaChanges(LiveChanges):
    BASE = "DC=contoso,DC=com"
    PEOPLE = f"OU=People,{BASE}"
    GROUPS = f"OU=Groups,{BASE}"
    EXCLUDED = f"OU=Excluded,{PEOPLE}"
    parents = [PEOPLE, f"OU=Sales,{PEOPLE}"]
    outside = f"CN=Users,{BASE}"
    out_of_scope = [EXCLUDED, outside]
    groups = [f"CN=Engineering,{GROUPS}", f"CN=All People,{GROUPS}"]
    DIRECTORY = {"name": "contoso", "preset": "active_directory", "containers": [PEOPLE, GROUPS],
                 "excluded_containers": [EXCLUDED]}

    def setup(self) -> None:
        for ou in (f"OU=Sales,{self.PEOPLE}", self.EXCLUDED):
            self.ok(self.conn.add(ou, "organizationalUnit"))
        self.disabled.add(f"CN=User 0003,{self.PEOPLE}")  # seeded disabled (546)
        self.seed_outsiders()

    def new_person(self, parent: str, name: str, manager: str) -> str:
        dn = f"CN=New {name},{parent}"
        self.ok(self.conn.add(dn, "user", {
            "sAMAccountName": name, "userPrincipalName": f"{name}@contoso.com", "displayName": f"New {name}",
            "proxyAddresses": [f"SMTP:{name}@contoso.com", f"SIP:{name}@contoso.com"], "title": "New",
            "userAccountControl": "544", "manager": manager}))
        return dn

    def modify(self) -> str:
        dn = self.person()
        attr = self.rnd.choice(["title", "telephoneNumber", "department", "userPrincipalName", "proxyAddresses",
                                "displayName"])
        self.serial += 1
        if attr == "userPrincipalName":
            value: list[str] = [f"m{self.serial}@contoso.com"]
        elif attr == "proxyAddresses":
            value = [f"SMTP:m{self.serial}@contoso.com", f"smtp:alias{self.serial}@contoso.com"]
        else:
            value = [f"{attr} {self.rnd.randrange(1000)}"]
        self.ok(self.conn.modify(dn, {attr: [(ldap3.MODIFY_REPLACE, value)]}))
        return f"modify {dn}.{attr}"

    def set_disabled(self, dn: str, disabled: bool) -> None:
        # Bit 0x2 with other bits around it: 514 (0x202), 546 (0x222), 66050 (0x10202); enabled: 512, 544, 66048.
        value = self.rnd.choice([514, 546, 66050] if disabled else [512, 544, 66048])
        self.ok(self.conn.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(value)])]}))

    def recreate_attributes(self, dn: str) -> dict[str, Any]:
        self.conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE,
                         attributes=["sAMAccountName", "userPrincipalName", "proxyAddresses"])
        got = self.conn.response[0]["attributes"]
        self.serial += 1
        attrs: dict[str, Any] = {"objectClass": "user", "sAMAccountName": f"again{self.serial}",
                                 "userAccountControl": "544", "title": "Again"}
        if got.get("userPrincipalName"):
            attrs["userPrincipalName"] = got["userPrincipalName"]
        if got.get("proxyAddresses"):
            attrs["proxyAddresses"] = got["proxyAddresses"]
        return attrs


def _people(conn: ldap3.Connection, base: str, object_class: str) -> list[str]:
    conn.search(base, f"(objectClass={object_class})", attributes=["objectClass"])
    return sorted(r["dn"] for r in conn.response if r["type"] == "searchResEntry")


def _timed(h: LdapSyncHarness, mode: str, durations: dict[str, list[float]] | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = h.sync(mode=mode)
    if durations is not None:
        durations["run_sync"].append(time.perf_counter() - t0)
        durations["import"].append(next(v["duration_s"] for k, v in out.items() if k.startswith("import_directory")))
    return out


def _kind(label: str) -> str:
    words = label.split()
    for prefix in ("move out of scope", "move back in", "move in (created outside)", "create outside", "full run"):
        if label.startswith(prefix):
            return prefix
    if label.startswith("manager") and label.endswith("removed"):
        return "manager removed"
    return words[0]


def run_property(tmp_path, info, changes: LiveChanges, steps: int, label: str,  # noqa: ANN001
                 method: str | None = None) -> None:
    """``method``: the delta method every incremental run must have used (the committed watermark's)."""
    rnd = changes.rnd
    directory = changes.DIRECTORY
    inc = LdapSyncHarness(tmp_path / "incremental", info, directory, gates=NO_LIMITS)
    full = LdapSyncHarness(tmp_path / "full", info, directory, gates=NO_LIMITS)
    times = {mode: {"run_sync": [], "import": []} for mode in ("incremental", "full")}
    kinds: Counter[str] = Counter()
    rereads = 0
    name = directory["name"]

    def run_both(what: str, first: bool = False) -> None:
        nonlocal rereads
        out = _timed(inc, "incremental", None if first else times["incremental"])
        _timed(full, "full", None if first else times["full"])
        assert_same(snapshot(inc), snapshot(full), what)
        if first:
            return
        imported = out[f"import_directory[{name}]"]
        assert out["start_run"]["mode"] == "incremental", out["start_run"]
        assert "full_import_reason" not in imported, imported["full_import_reason"]
        assert imported["delta_read"] or imported["unchanged_source"], imported
        assert out["synchronize"]["delta"] is True, "the incremental run fell back to a full synchronization"
        rereads += imported.get("delta_rereads", 0)
        if method:
            watermark = inc.context().store.committed_manifest()["values"][f"watermark/{name}"]
            assert watermark["method"] == method, watermark

    run_both("the first run", first=True)
    history: list[list[str]] = []
    for step in range(steps):
        drawn = [changes.draw() for _ in range(rnd.randint(2, 3))]
        labels = [getattr(changes, kind)() for kind in drawn]
        if rnd.random() < 0.2:
            # Someone edits a property the directory owns, in the profile store: the next run sets it back.
            for h in (inc, full):
                h.sql("UPDATE user_profiles SET title = 'edited in the store' WHERE profile_id IN "
                      "(SELECT profile_id FROM user_profiles WHERE state = 'active' ORDER BY profile_id LIMIT 1)")
            labels.append("store edit")
        history.append(labels)
        kinds.update(_kind(x) for x in labels if x != "store edit")
        run_both(f"step {step}: {labels} (history {history})")
        if changes.full_run_due:  # the weekly full run of the incremental side
            changes.full_run_due = False
            inc.sync(mode="full")
            assert_same(snapshot(inc), snapshot(full), f"the full run after step {step}")
            changes.forget()

    if steps * 2 >= len(LiveChanges.KINDS):  # two or three changes a step: every kind was drawn at least once
        assert not {"add", "modify", "rename", "move", "disable", "delete", "manager", "create", "full"} - {
            k.split()[0] for k in kinds}, kinds

    fresh = LdapSyncHarness(tmp_path / "fresh", info, directory, gates=NO_LIMITS)
    fresh.sync(mode="full")
    mine, theirs = snapshot(inc), snapshot(fresh)
    active = mine[0].loc[mine[0]["state"] == "active"].drop(columns="profile_id").sort_values(
        "account_name").reset_index(drop=True)
    pd.testing.assert_frame_equal(active, theirs[0].drop(columns="profile_id").sort_values(
        "account_name").reset_index(drop=True), check_dtype=False, obj="active profiles vs a fresh full run")

    def ratio(what: str) -> str:
        i, f = statistics.mean(times["incremental"][what]), statistics.mean(times["full"][what])
        return f"{what} incremental {i:.3f} s / full {f:.3f} s = {i / f:.2f}"

    print(f"\n{label}: {steps} steps, {rereads} re-read(s); {ratio('run_sync')}; {ratio('import')}; "
          f"kinds {dict(sorted(kinds.items()))}")


@pytest.mark.parametrize(("seed", "refint"), [(1, False), (2, False), (3, True)], ids=["1", "2", "3-refint"])
def test_delta_equals_full_on_slapd(slapd_factory, tmp_path, seed, refint):
    server = slapd_factory(tls=False, memberof=refint)
    server.load_entries(default_slapd_entries())
    server.start()
    conn = server.connect()
    changes = SlapdChanges(random.Random(seed), conn, _people(conn, SlapdChanges.PEOPLE, "inetOrgPerson"))
    changes.setup()
    run_property(tmp_path, slapd_info(server), changes, int(STEPS or 8),
                 f"slapd seed {seed} {'refint' if refint else 'no refint'}")


@pytest.mark.parametrize(("method", "steps"), [("dirsync", 8), ("usn", 6)])
def test_delta_equals_full_on_samba(samba_dc_fresh, tmp_path, method, steps):
    """DirSync as configured by default, and uSNChanged (what a DC that refuses DirSync falls back to)."""
    dc = samba_dc_fresh
    conn = dc.connect()
    changes = SambaChanges(random.Random(11 if method == "dirsync" else 12), conn, _people(conn, SambaChanges.PEOPLE, "user"))
    changes.setup()
    run_property(tmp_path, samba_info(dc, delta_method="auto" if method == "dirsync" else "usn"), changes,
                 int(STEPS or steps), f"samba {method}", method=method)
