"""Several directories (two forests) joined into one metaverse by join rules, with precedence."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers.directory import FakeDirectory
from tests.helpers.sync import SyncHarness

FAB_USERS = "OU=Users,DC=contoso,DC=com"  # FakeDirectory's layout; the second forest is a second file


def two_forests(tmp_path, *, join=None, project=True, precedence=None, contoso_precedence=None):
    h = SyncHarness(tmp_path)
    doc = yaml.safe_load(h.config.read_text())
    contoso = doc["directories"][0]
    if contoso_precedence is not None:
        contoso["precedence"] = contoso_precedence
    fabrikam = {
        "name": "fabrikam", "type": "ldif", "path": str(tmp_path / "fabrikam.ldif"),
        "containers": [FAB_USERS], "project": project,
        "join": join if join is not None else [{"source": "mail", "metaverse": "work_email"}],
        # The resource forest only contributes a phone number and a title.
        "mappings": {p: None for p in (
            "account_name", "user_name", "user_principal_name", "preferred_name", "first_name", "last_name",
            "work_email", "sip_address", "office", "job_title", "department", "public_site_redirect",
            "language_preferences", "hide_from_address_lists", "manager", "picture")},
    }
    doc["directories"].append(fabrikam)
    if precedence:
        doc["precedence"] = precedence
    h.config.write_text(yaml.safe_dump(doc))
    return h


def smtp(mail):
    return [f"SMTP:{mail}"]


def sync(h, contoso: FakeDirectory, fabrikam: FakeDirectory):
    fabrikam.write(h.tmp / "fabrikam.ldif")
    return h.sync(contoso)


@pytest.fixture
def forests():
    contoso, fabrikam = FakeDirectory(), FakeDirectory()
    contoso.person(1, "Ada", upn="ada@contoso.com", proxyAddresses=smtp("ada@contoso.com"), title="Engineer")
    contoso.person(2, "Bob", upn="bob@contoso.com", proxyAddresses=smtp("bob@contoso.com"), title="Manager")
    fabrikam.person(101, "Ada F", upn="ada@fabrikam.com", mail="ADA@contoso.com ", telephoneNumber="+1 111",
                    title="Resource Title")
    fabrikam.person(102, "Nobody", upn="nobody@fabrikam.com", mail="nobody@fabrikam.com", telephoneNumber="+1 222")
    return contoso, fabrikam


def test_joined_people_share_one_profile_and_precedence_picks_values(tmp_path, forests):
    h = two_forests(tmp_path)
    out = sync(h, *forests)
    people = h.profiles()
    assert len(people.loc[people["state"] == "active"]) == 2  # Ada (joined), Bob
    # Nobody (projected from fabrikam, which does not feed account_name) cannot have an account name: held.
    assert out["synchronize"]["held_samples"] == [{
        "source_dn": "CN=Nobody,OU=Users,DC=contoso,DC=com",
        "reason": "no value for `account_name`: fabrikam does not map it, and no connection that does "
                  "(`userPrincipalName` of contoso) has this person"}]
    ada = h.profile("ada@contoso.com")
    assert ada["work_phone"] == "+1 111"       # only fabrikam feeds it
    assert ada["title"] == "Engineer"           # contoso first in the file: it wins
    assert ada["source_connection"] == "contoso"
    assert out["synchronize"]["join_problems"] == 0


def test_per_property_precedence(tmp_path, forests):
    h = two_forests(tmp_path, precedence={"title": ["fabrikam", "contoso"]})
    sync(h, *forests)
    assert h.profile("ada@contoso.com")["title"] == "Resource Title"
    assert h.profile("bob@contoso.com")["title"] == "Manager"  # fabrikam has no value for Bob


def test_join_only_connection_projects_nobody(tmp_path, forests):
    h = two_forests(tmp_path, project=False)
    sync(h, *forests)
    people = h.profiles()
    assert sorted(people["user_principal_name"].dropna()) == ["ada@contoso.com", "bob@contoso.com"]
    assert h.profile("ada@contoso.com")["work_phone"] == "+1 111"


def test_ambiguous_match_is_reported_and_not_joined(tmp_path, forests):
    contoso, fabrikam = forests
    fabrikam.person(103, "Ada Twin", upn="ada2@fabrikam.com", mail="ada@contoso.com", telephoneNumber="+1 333")
    h = two_forests(tmp_path, project=False)
    out = sync(h, contoso, fabrikam)
    assert out["synchronize"]["join_problems"] == 2
    assert {s["reason"] for s in out["synchronize"]["join_samples"]} == {
        "several objects of this connection match one metaverse person"}
    assert h.profile("ada@contoso.com")["work_phone"] is None


def test_link_survives_and_leaving_one_forest_keeps_the_profile(tmp_path, forests):
    contoso, fabrikam = forests
    h = two_forests(tmp_path)
    sync(h, contoso, fabrikam)
    pid = h.profile("ada@contoso.com")["profile_id"]
    # The mail changes in the resource forest: the existing link holds (joins happen once).
    fabrikam.person(101, "Ada F", upn="ada@fabrikam.com", mail="changed@fabrikam.com", telephoneNumber="+1 999")
    sync(h, contoso, fabrikam)
    assert h.profile("ada@contoso.com")["work_phone"] == "+1 999"
    # Gone from the resource forest: her profile stays (contoso still feeds it), the phone empties.
    fabrikam.remove("CN=Ada F,OU=Users,DC=contoso,DC=com")
    sync(h, contoso, fabrikam)
    row = h.profiles().loc[pid]
    assert row["state"] == "active"
    assert row["work_phone"] is None


def test_join_rules_are_validated(tmp_path):
    from profile_sync.config import ConfigError, load_settings

    h = two_forests(tmp_path, join=[{"source": "mail", "metaverse": "shoe_size"}])
    with pytest.raises(ConfigError, match=r"directories\[1\]\.join.*shoe_size"):
        load_settings(h.config)
    h = two_forests(tmp_path, precedence={"title": ["nowhere"]})
    with pytest.raises(ConfigError, match="unknown connections"):
        load_settings(h.config)


def test_projected_ids_are_the_uuid5_of_connection_type_and_anchor():
    import uuid

    from profile_sync.sync.join_rules import _MV_NAMESPACE, projected_id, projected_ids

    anchors = ["3f2a9c1e-0000-4000-8000-000000000001", "uid=ünïcode,dc=example", "", "a\x1fb", "東京"]
    for connection in ("corp", "forêt-2"):
        got = projected_ids(connection, ["person", "group"] * 2 + ["person"], anchors)
        want = [str(uuid.uuid5(_MV_NAMESPACE, f"{connection}\x1f{t}\x1f{a}"))
                for t, a in zip(["person", "group"] * 2 + ["person"], anchors)]
        assert got == want == [projected_id(connection, t, a) for t, a in zip(["person", "group"] * 2 + ["person"], anchors)]
        assert all(uuid.UUID(g).version == 5 and uuid.UUID(g).variant == uuid.RFC_4122 for g in got)
