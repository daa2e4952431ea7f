"""A person's lineage and why someone has no profile (status/lineage.py), on real synchronizations.

Each property's connection, source attribute and transform are the ones the synchronization used
(including per-property precedence between two forests); "last changed in" follows the runs that
changed it; people without a profile are explained (disabled, outside the containers, quarantined,
never seen, marked for deletion).
"""

from __future__ import annotations

import pandas as pd
import pytest

from profile_sync.status.frames import CommittedState
from profile_sync.status.lineage import (LAST_CHANGED_KEY, changes_patch, connector_object, person, record_changes,
                                         search)
from tests.helpers.directory import BASE, USERS, FakeDirectory
from tests.helpers.sync import SyncHarness


def directory() -> FakeDirectory:
    d = FakeDirectory()
    for i in range(1, 7):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com", title=f"Title {i}", displayName=f"Person {i}",
                 givenName=f"Given{i}", sn=f"Family{i}", manager=f"CN=Person {i // 2},{USERS}" if i > 1 else None,
                 proxyAddresses=[f"SMTP:person.{i}@contoso.com", f"SIP:p{i}@contoso.com"],
                 thumbnailPhoto=bytes([0xFF, 0xD8, i]))
    d.person(101, "Disabled Dora", upn="dora@contoso.com", uac=514, displayName="Disabled Dora")
    d.person(102, "Outside Olga", upn="olga@contoso.com", ou=f"OU=Elsewhere,{BASE}", displayName="Outside Olga")
    d.person(103, "Twin One", upn="twin1@contoso.com")
    d.person(103, "Twin Two", upn="twin2@contoso.com")
    return d


def view(h: SyncHarness) -> CommittedState:
    return CommittedState(h.context().store)


def lineage(h: SyncHarness, upn: str) -> dict:
    pid = h.profile(upn)["profile_id"]
    found = person(view(h), h.context().settings, pid)
    return {**found, "by_property": {p["property"]: p for p in found["properties"]}}


def run_id(h: SyncHarness) -> str:
    """The run key of the harness's last run (call right after ``h.sync``: every ``h.context()`` counts)."""
    return f"manual/test-run-{h.runs}"


@pytest.fixture
def synced(tmp_path):
    h = SyncHarness(tmp_path)
    d = directory()
    h.sync(d)
    return h, d


def test_each_property_names_its_connection_source_attribute_transform_and_run(synced):
    h, d = synced
    first = run_id(h)
    p = lineage(h, "p5@contoso.com")
    props = p["by_property"]
    assert {k: props["title"][k] for k in ("value", "connection", "source_attribute", "transform", "last_changed_in")} \
        == {"value": "Title 5", "connection": "contoso", "source_attribute": "title", "transform": "copy",
            "last_changed_in": first}
    assert (props["work_email"]["value"], props["work_email"]["source_attribute"], props["work_email"]["transform"]) \
        == ("person.5@contoso.com", "proxyAddresses", "proxy_primary_smtp")
    assert props["sip_address"]["value"] == "p5@contoso.com" and props["sip_address"]["transform"] == "proxy_sip"
    assert props["account_name"]["value"] == "i:0#.f|membership|p5@contoso.com"
    assert props["manager"]["value"] == "i:0#.f|membership|p2@contoso.com"
    assert props["manager"]["reference_dn"] == "cn=person 2,ou=users,dc=contoso,dc=com"
    assert props["picture"]["value"] == {"binary": True, "not_read": True}  # photos are not read for a page view
    assert (props["picture"]["connection"], props["picture"]["source_attribute"]) == ("contoso", "thumbnailPhoto")
    assert props["about_me"]["kind"] == "profile_store" and props["about_me"]["connection"] is None
    assert p["status"]["code"] == "active" and p["state_last_changed_in"] == first
    (obj,) = p["objects"]
    assert (obj["connection"], obj["dn"], obj["in_scope"], obj["connected"]) == (
        "contoso", f"CN=Person 5,{USERS}", True, True)

    d.entries[f"CN=Person 5,{USERS}"]["title"] = ["Title 5 (acting)"]
    h.sync(d, mode="incremental")
    second = run_id(h)
    props = lineage(h, "p5@contoso.com")["by_property"]
    assert props["title"]["value"] == "Title 5 (acting)" and props["title"]["last_changed_in"] == second
    assert props["job_title"]["last_changed_in"] == second
    assert props["first_name"]["last_changed_in"] == first
    assert lineage(h, "p4@contoso.com")["by_property"]["title"]["last_changed_in"] == first


def test_people_without_a_profile_say_why(synced):
    h, d = synced
    v, settings = view(h), h.context().settings
    why = {q: {(r["kind"], (r.get("why") or {}).get("code")) for r in search(v, settings, q)["results"]}
           for q in ("dora", "olga", "twin", "person.3@contoso", "Given4 Family4")}
    assert why == {"dora": {("object", "disabled")}, "olga": {("object", "out_of_scope")},
                   "twin": {("object", "quarantined")}, "person.3@contoso": {("profile", None)},
                   "Given4 Family4": {("profile", None)}}
    never = search(v, settings, "nobody-by-this-name")
    assert never["results"] == [] and never["why"]["code"] == "never_seen"
    dora = next(r for r in search(v, settings, "dora")["results"])
    assert "account disabled" in dora["why"]["text"]
    olga = connector_object(v, settings, "contoso", dn=f"CN=Outside Olga,OU=Elsewhere,{BASE}")
    assert olga["why"] == {"code": "out_of_scope", "text": "out of scope: outside the selected containers"}
    twin = next(r for r in search(v, settings, "twin one")["results"])
    assert "duplicate anchor" in twin["why"]["text"]

    # A person deleted in the directory keeps a profile, marked for deletion, and says why.
    d.remove(f"CN=Person 6,{USERS}")
    h.sync(d)
    deleted_in = run_id(h)
    gone = lineage(h, "p6@contoso.com")
    assert gone["status"] == {"code": "marked_for_deletion", "text": "marked for deletion: no longer in the directory"}
    assert gone["state_last_changed_in"] == deleted_in
    # Dora re-enabled: now she has a profile.
    d.entries[f"CN=Disabled Dora,{USERS}"]["userAccountControl"] = ["512"]
    h.sync(d)
    (result,) = search(view(h), settings, "dora")["results"]
    assert result["kind"] == "profile" and result["state"] == "active"


def test_per_property_precedence_between_two_forests_shows_the_winning_connection(tmp_path):
    h = SyncHarness(tmp_path, precedence={"title": ["fabrikam", "contoso"]})
    fabrikam_ldif = tmp_path / "fabrikam.ldif"
    import yaml

    doc = yaml.safe_load(h.config.read_text())
    doc["directories"].append({"name": "fabrikam", "type": "ldif", "path": str(fabrikam_ldif), "containers": [USERS],
                               "project": False, "join": [{"source": "proxyAddresses", "metaverse": "work_email",
                                                           "transform": "proxy_primary_smtp"}]})
    h.config.write_text(yaml.safe_dump(doc))
    contoso, fabrikam = FakeDirectory(), FakeDirectory()
    contoso.person(1, "Ann", upn="ann@contoso.com", title="Engineer", department="R&D",
                   proxyAddresses=["SMTP:ann@contoso.com"])
    fabrikam.person(501, "Ann F", upn="ann@fabrikam.com", title="Principal Engineer", department="Labs",
                    proxyAddresses=["SMTP:ann@contoso.com"])
    fabrikam.write(fabrikam_ldif)
    h.sync(contoso)
    props = lineage(h, "ann@contoso.com")["by_property"]
    assert (props["title"]["value"], props["title"]["connection"]) == ("Principal Engineer", "fabrikam")
    assert (props["department"]["value"], props["department"]["connection"]) == ("R&D", "contoso")
    assert [(c["connection"], c["value"]) for c in props["title"]["candidates"]] == [
        ("fabrikam", "Principal Engineer"), ("contoso", "Engineer")]
    assert {o["connection"] for o in lineage(h, "ann@contoso.com")["objects"]} == {"contoso", "fabrikam"}


def test_record_changes_keeps_earlier_runs_and_sets_only_what_changed():
    adds = pd.DataFrame({"profile_id": ["a", "b"], "operation": "add",
                         "changed": "title,work_email,source_connection,source_dn"})
    first = record_changes(None, adds, "r1").set_index("profile_id")
    assert first.loc["a", "title"] == "r1" and first.loc["b", "state"] == "r1"
    assert "source_connection" not in first.columns
    later = pd.DataFrame({"profile_id": ["a", "b", "c"], "operation": ["update", "mark", "unmark"],
                          "changed": ["title", "state", "work_email"]})
    second = record_changes(first.reset_index(), later, "r2").set_index("profile_id")
    assert second.loc["a"].to_dict() == {"title": "r2", "work_email": "r1", "state": "r1"}
    assert second.loc["b"].to_dict() == {"title": "r1", "work_email": "r1", "state": "r2"}
    assert second.loc["c", "work_email"] == "r2" and second.loc["c", "state"] == "r2"
    assert pd.isna(second.loc["c", "title"])
    unchanged = record_changes(second.reset_index(), later.iloc[0:0], "r3")
    assert unchanged.set_index("profile_id").equals(second)


def test_record_changes_keeps_known_people_in_place_and_adds_new_ones_last():
    import pyarrow as pa

    from profile_sync.state import patches

    adds = pd.DataFrame({"profile_id": ["a", "b", "c"], "operation": "add", "changed": "title,work_email"})
    previous = record_changes(None, adds, "r1")
    later = pd.DataFrame({"profile_id": ["c", "new2", "a", "new1", "c"], "operation": ["update", "add", "update",
                                                                                      "add", "update"],
                          "changed": ["title", "title,work_email", "work_email", "title,work_email", "title"]})
    out = record_changes(previous, later, "r2")
    assert out["profile_id"].tolist() == ["a", "b", "c", "new2", "new1"]
    patch = changes_patch(previous, later)
    assert patch.key == "profile_id" and patch.appended == 2 and set(patch.replaced) == {"a", "c", "new1", "new2"}
    plan = patches.plan(pa.array(previous["profile_id"]), out, patch)
    assert plan is not None and plan.replaced.tolist() == [0, 2] and plan.appended.tolist() == [3, 4]
    assert changes_patch(None, later).appended == 4  # c, new2, a, new1: every one new


def test_a_dry_run_or_a_failed_run_records_no_change(synced):
    h, d = synced
    before = view(h).frame(LAST_CHANGED_KEY)
    d.entries[f"CN=Person 2,{USERS}"]["title"] = ["Boss"]
    h.sync(d, dry_run=True)
    assert view(h).frame(LAST_CHANGED_KEY).equals(before)


def test_business_system_properties_name_their_column_join_and_run(tmp_path):
    """A CSV business system (steps 9–12): its properties come from it, multi-valued ones from the value rows."""
    csv = tmp_path / "hr.csv"
    h = SyncHarness(tmp_path, custom_properties={"employee_id": {"max_length": 16},
                                                 "certifications": {"max_length": 64, "multi_valued": True}},
                    business_systems=[{"name": "hr", "type": "file", "path": str(csv),
                                       "join": {"profile_property": "user_principal_name", "source_column": "login"},
                                       "mappings": {"employee_id": "number", "certifications": "cert"}}])
    csv.write_text("login,number,cert\np1@contoso.com,E-1,CISSP\np1@contoso.com,E-1,CCNA\np2@contoso.com,E-2,\n")
    d = FakeDirectory()
    d.person(1, "Person 1", upn="p1@contoso.com")
    d.person(2, "Person 2", upn="p2@contoso.com")
    h.sync(d)
    first = run_id(h)
    props = lineage(h, "p1@contoso.com")["by_property"]
    assert {k: props["employee_id"][k] for k in ("value", "kind", "connection", "source_attribute", "last_changed_in")} \
        == {"value": "E-1", "kind": "business_system", "connection": "hr", "source_attribute": "number",
            "last_changed_in": first}
    assert "join user_principal_name = login" in props["employee_id"]["transform"]
    assert props["certifications"]["value"] == ["CISSP", "CCNA"] and props["certifications"]["source_attribute"] == "cert"

    csv.write_text("login,number,cert\np1@contoso.com,E-1,CISSP\np1@contoso.com,E-1,CCNA\np2@contoso.com,E-20,\n")
    h.sync(d)
    second = run_id(h)
    assert lineage(h, "p2@contoso.com")["by_property"]["employee_id"]["last_changed_in"] == second
    assert lineage(h, "p1@contoso.com")["by_property"]["employee_id"]["last_changed_in"] == first
