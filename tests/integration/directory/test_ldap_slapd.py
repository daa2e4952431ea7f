"""The LDAP reader, delta reader and write-back against a real OpenLDAP (slapd 2.5). No mocks."""

from __future__ import annotations

import logging

import ldap3
import pytest

from profile_sync.directory.entries import DeltaStateInvalid
from profile_sync.directory.errors import DirectoryError, DirectoryUnavailableError
from profile_sync.sync.connector_space import build_connector_space

from tests.helpers.delta import NO_LIMITS, assert_same, snapshot
from tests.helpers.ldap import LdapSyncHarness, by_dn, reader, slapd_info
from tests.servers.fixtures import default_slapd_entries

pytestmark = pytest.mark.timeout(300)
PEOPLE = "ou=people,dc=example,dc=org"
GROUPS = "ou=groups,dc=example,dc=org"


def _uuid(conn, dn: str) -> str:
    conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["entryUUID"])
    return conn.response[0]["raw_attributes"]["entryUUID"][0].decode()


# -- full import -----------------------------------------------------------------------------
def test_full_read_is_paged_past_a_size_limit_and_anchored_on_entryuuid(slapd_factory):
    server = slapd_factory(size_limit=20, tls=False)  # like AD's MaxPageSize: a plain search stops at 20
    server.load_entries(default_slapd_entries())
    server.start()
    r = reader(slapd_info(server, page_size=7))
    entries = list(r.read_full(frozenset(r.directory.attributes)))
    assert len(entries) == 52  # 50 people + 2 groups, past the 20-entry limit
    assert [e.position for e in entries] == list(range(1, 53))
    everyone = by_dn(entries)[f"cn=everyone,{GROUPS}"]
    assert len(everyone.attributes["member"]) == 50
    assert all(isinstance(v, bytes) for e in entries for vs in e.attributes.values() for v in vs)
    assert all(k == k.lower() for e in entries for k in e.attributes)

    space = build_connector_space(entries, r.directory).objects
    conn = server.connect()
    assert set(space.loc[space["dn"] == f"uid=p0007,{PEOPLE}", "anchor"]) == {_uuid(conn, f"uid=p0007,{PEOPLE}")}
    assert (space["object_type"] == "person").sum() == 50 and space["anchor"].is_unique


def test_a_search_reading_ahead_is_whole_refuses_other_searches_meanwhile_and_can_be_left(slapd_factory):
    """The full read asks for the next page before handing one over (slapd builds it meanwhile). slapd ends
    a paged search silently when another operation arrives then, so the client refuses any other search."""
    server = slapd_factory(size_limit=20, tls=False)
    server.load_entries(default_slapd_entries())
    server.start()
    people = "(objectClass=inetOrgPerson)"
    with reader(slapd_info(server, page_size=7)).client() as client:
        ahead = [dn for p in client.search_pages(PEOPLE, people, ["uid"], ahead=True) for dn, _ in p]
        assert len(ahead) == 50 == len(set(ahead))  # past the size limit of 20, in pages of 7
        pages = client.search_pages(PEOPLE, people, ["uid"], ahead=True)
        assert len(next(pages)) == 7
        with pytest.raises(RuntimeError, match="reading ahead is in progress"):
            client.read(f"uid=p0003,{PEOPLE}", ["uid"])
        with pytest.raises(RuntimeError, match="reading ahead is in progress"):
            next(client.search_pages(GROUPS, "(objectClass=groupOfNames)", ["cn"]))
        assert sum(len(p) for p in pages) == 43  # the refused searches left it whole
        # Left after its first page (the next one asked for): the connection's next search is whole.
        first = client.search_pages(PEOPLE, people, ["uid"], ahead=True)
        assert len(next(first)) == 7
        first.close()
        # Without reading ahead, a read between pages is fine (what ranged retrieval does).
        seen = []
        for page in client.search_pages(PEOPLE, people, ["uid"]):
            seen += [dn for dn, _ in page]
            assert client.read(f"uid=p0003,{PEOPLE}", ["uid"])["uid"] == [b"p0003"]
        assert sorted(seen) == sorted(ahead)


def test_a_5000_member_group_arrives_whole(slapd_factory):
    server = slapd_factory(tls=False)
    people = [(f"uid=m{i:05d},{PEOPLE}", {"objectClass": ["inetOrgPerson"], "uid": f"m{i:05d}", "cn": f"M {i}",
                                          "sn": str(i)}) for i in range(5000)]
    server.load_entries([*people, (f"cn=big,{GROUPS}", {"objectClass": ["groupOfNames"], "cn": "big",
                                                        "member": [dn for dn, _ in people]})])
    server.start()
    entries = by_dn(reader(slapd_info(server, page_size=1000)).read_full())
    members = entries[f"cn=big,{GROUPS}"].attributes["member"]
    assert len(members) == 5000 and {m.decode() for m in members} == {dn for dn, _ in people}


def test_ldaps_and_starttls_with_the_test_ca(slapd_server):
    for info in (slapd_info(slapd_server, host=slapd_server.ldaps_uri, ca_file=str(slapd_server.ca_file)),
                 slapd_info(slapd_server, tls="start_tls", ca_file=str(slapd_server.ca_file))):
        r = reader(info)
        assert r.settings.tls in ("ldaps", "start_tls")
        assert len(list(r.read_full())) == 52


@pytest.mark.parametrize("tls", ["ldaps", "start_tls"])
def test_an_untrusted_certificate_is_a_terminal_error(slapd_server, tls):
    host = slapd_server.ldaps_uri if tls == "ldaps" else slapd_server.uri
    r = reader(slapd_info(slapd_server, host=host, tls=tls, retries=1))  # verify on, system CAs only
    with pytest.raises(DirectoryError) as err:
        list(r.read_full())
    assert err.value.terminal and "ca_file" in str(err.value)
    # Verification off (a test server only) connects.
    assert len(list(reader(slapd_info(slapd_server, host=host, tls=tls, verify=False)).read_full())) == 52


@pytest.mark.parametrize("tls", ["ldaps", "start_tls"])
def test_a_certificate_for_another_name_says_which_names_it_has_not_to_set_ca_file(slapd_server, tls):
    """The CA is trusted (ca_file is set) but the host name is not in the certificate: ldap3's message puts
    the whole certificate before the reason, and used to be cut at 300 characters — reason gone — with a hint
    to set ca_file, which was set."""
    port = slapd_server.ldaps_port if tls == "ldaps" else slapd_server.port
    host = f"{'ldaps' if tls == 'ldaps' else 'ldap'}://127.1:{port}"  # 127.0.0.1, by a name not in the certificate
    r = reader(slapd_info(slapd_server, host=host, tls=tls, ca_file=str(slapd_server.ca_file), retries=1))
    with pytest.raises(DirectoryError) as err:
        list(r.read_full())
    text = str(err.value)
    assert err.value.terminal
    assert "the server's certificate is for localhost, 127.0.0.1, not for '127.1'" in text
    assert "use one of those names as the Connection's host" in text
    assert "set the 'ca_file'" not in text and "serialNumber" not in text


def test_a_ca_file_that_did_not_sign_the_certificate_says_so(slapd_server, tmp_path):
    from tests.servers._tls import make_server_certificate

    other = make_server_certificate(tmp_path / "other").ca_file  # another CA
    r = reader(slapd_info(slapd_server, host=slapd_server.ldaps_uri, ca_file=str(other), retries=1))
    with pytest.raises(DirectoryError) as err:
        list(r.read_full())
    text = str(err.value)
    assert "certificate verify failed" in text
    assert f"the CA file '{other}' ('ca_file' extra) does not hold the CA that signed the server's certificate" in text


def test_a_ca_file_that_is_not_there_is_terminal_and_named(slapd_server, tmp_path):
    missing = tmp_path / "nowhere" / "ca.pem"
    r = reader(slapd_info(slapd_server, host=slapd_server.ldaps_uri, ca_file=str(missing), retries=1))
    with pytest.raises(DirectoryError, match=r"names '.*nowhere/ca.pem', which is not a file on this worker") as err:
        list(r.read_full())
    assert err.value.terminal


def test_a_wrong_password_is_a_clear_terminal_error_without_the_password(slapd_server, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "not-the-Password-42"
    r = reader(slapd_info(slapd_server, password=secret, retries=3))
    with pytest.raises(DirectoryError) as err:
        list(r.read_full())
    assert not isinstance(err.value, DirectoryUnavailableError) and err.value.terminal
    text = str(err.value)
    assert "invalid credentials" in text and "slapd_test" in text and slapd_server.admin_dn in text
    assert secret not in text and secret not in caplog.text and secret not in repr(r.settings)
    assert "again" not in caplog.text  # a refused bind is not retried


def test_a_server_that_is_down_is_a_transient_error_after_retries(slapd_factory, caplog):
    server = slapd_factory(tls=False)
    server.load_entries(default_slapd_entries(people=3))
    server.start()
    info = slapd_info(server, retries=2, connect_timeout=2)
    server.stop()
    with pytest.raises(DirectoryUnavailableError) as err:
        list(reader(info).read_full())
    assert not err.value.terminal and server.uri.replace("ldap://", "") in str(err.value)
    assert "attempt 2 of 2" in caplog.text


def test_a_server_dying_mid_read_is_transient_never_a_short_read(slapd_factory):
    server = slapd_factory(tls=False)
    server.load_entries(default_slapd_entries(people=2000))
    server.start()
    seen = 0
    with pytest.raises(DirectoryUnavailableError):
        for _ in reader(slapd_info(server, page_size=100, retries=1)).read_full():
            seen += 1
            if seen == 150:
                server.kill()
    assert 150 <= seen < 2002


def test_a_missing_base_dn_is_terminal(slapd_server):
    r = reader(slapd_info(slapd_server), containers=["ou=nowhere,dc=example,dc=org"])
    with pytest.raises(DirectoryError, match="does not exist"):
        list(r.read_full())


# -- delta import ------------------------------------------------------------------------------
def test_delta_sees_add_modify_rename_move_and_delete(slapd_fresh):
    r = reader(slapd_info(slapd_fresh))
    attributes = frozenset(r.directory.attributes)
    before = r.watermark()
    assert before["kind"] == "openldap" and before["accesslog"]["base"] == "cn=accesslog"
    conn = slapd_fresh.connect()
    deleted_uuid = _uuid(conn, f"uid=p0009,{PEOPLE}")
    renamed_uuid = _uuid(conn, f"uid=p0011,{PEOPLE}")
    assert conn.add(f"uid=new1,{PEOPLE}", ["inetOrgPerson"], {"cn": "New", "sn": "One", "mail": "new1@example.org"})
    assert conn.modify(f"uid=p0010,{PEOPLE}", {"title": [(ldap3.MODIFY_REPLACE, ["Chief"])]})
    assert conn.modify_dn(f"uid=p0011,{PEOPLE}", "uid=p0011-renamed")
    assert conn.modify_dn(f"uid=p0012,{PEOPLE}", "uid=p0012", new_superior=slapd_fresh.base_dn)  # out of scope
    assert conn.delete(f"uid=p0009,{PEOPLE}")
    assert conn.modify(f"cn=managers,{GROUPS}", {"member": [(ldap3.MODIFY_ADD, [f"uid=p0030,{PEOPLE}"])]})

    delta = r.read_delta(attributes, before)
    got = by_dn(delta.entries)
    assert set(got) == {f"uid=new1,{PEOPLE}", f"uid=p0010,{PEOPLE}", f"uid=p0011-renamed,{PEOPLE}",
                        f"uid=p0012,{slapd_fresh.base_dn}", f"cn=managers,{GROUPS}"}
    assert got[f"uid=p0010,{PEOPLE}"].attributes["title"] == [b"Chief"]
    assert got[f"uid=p0011-renamed,{PEOPLE}"].attributes["entryuuid"] == [renamed_uuid.encode()]
    assert len(got[f"cn=managers,{GROUPS}"].attributes["member"]) == 11  # full current values
    assert delta.deleted_anchors == [deleted_uuid] and delta.deleted_dns == []
    assert delta.watermark["context_csn"]["000"] > before["context_csn"]["000"]  # the watermark advanced

    again = r.read_delta(attributes, delta.watermark)
    assert again.entries == [] and again.deleted_anchors == []


def test_delta_without_entryuuid_anchor_reports_deleted_dns(slapd_fresh):
    r = reader(slapd_info(slapd_fresh), anchor="uid")
    before = r.watermark()
    conn = slapd_fresh.connect()
    assert conn.delete(f"uid=p0004,{PEOPLE}")
    delta = r.read_delta(frozenset(r.directory.attributes), before)
    assert delta.deleted_anchors == [] and delta.deleted_dns == [f"uid=p0004,{PEOPLE}"]


def test_an_accesslog_purged_past_the_watermark_invalidates_it(slapd_fresh):
    r = reader(slapd_info(slapd_fresh))
    conn = slapd_fresh.connect()
    assert conn.modify(f"uid=p0001,{PEOPLE}", {"title": [(ldap3.MODIFY_REPLACE, ["x"])]})
    watermark = r.watermark()
    record = watermark["accesslog"]["last_record"]
    assert record and record.endswith(",cn=accesslog")
    assert conn.delete(record)  # what logpurge does to old records
    with pytest.raises(DeltaStateInvalid, match="purged past the watermark") as err:
        r.read_delta(frozenset(r.directory.attributes), watermark)
    assert err.value.terminal and "purged" in err.value.reason


def test_no_readable_accesslog_means_no_delta(slapd_fresh):
    r = reader(slapd_info(slapd_fresh, accesslog_base="cn=nolog"))
    watermark = r.watermark()
    assert watermark["accesslog"] is None
    with pytest.raises(DeltaStateInvalid, match="accesslog"):
        r.read_delta(frozenset(r.directory.attributes), watermark)


def test_changed_scope_or_a_foreign_watermark_invalidates_it(slapd_server):
    watermark = reader(slapd_info(slapd_server)).watermark()
    narrower = reader(slapd_info(slapd_server), containers=[PEOPLE])
    with pytest.raises(DeltaStateInvalid, match="containers"):
        narrower.read_delta(frozenset(narrower.directory.attributes), watermark)
    with pytest.raises(DeltaStateInvalid, match="active_directory"):
        narrower.read_delta(frozenset(), {"kind": "active_directory"})


def test_an_incremental_run_whose_delta_state_is_invalid_reads_everything_and_counts_right(slapd_fresh, tmp_path):
    """The step falls back to a full read when the delta cannot be used (here: the accesslog was purged past
    the committed watermark): it says why, counts against the committed connector space, and lands where a
    full synchronization lands."""
    directory = {"name": "openldap", "preset": "inetorgperson", "containers": [PEOPLE, GROUPS]}
    inc = LdapSyncHarness(tmp_path / "inc", slapd_info(slapd_fresh), directory, gates=NO_LIMITS)
    full = LdapSyncHarness(tmp_path / "full", slapd_info(slapd_fresh), directory, gates=NO_LIMITS)
    conn = slapd_fresh.connect()
    assert conn.modify(f"uid=p0001,{PEOPLE}", {"title": [(ldap3.MODIFY_REPLACE, ["before"])]})  # a log record
    inc.sync("full")
    full.sync("full")
    record = inc.context().store.committed_manifest()["values"]["watermark/openldap"]["accesslog"]["last_record"]
    assert record and conn.delete(record)  # what logpurge does to old records
    assert conn.modify(f"uid=p0003,{PEOPLE}", {"title": [(ldap3.MODIFY_REPLACE, ["changed"])]})
    out = inc.sync("incremental")
    full.sync("full")
    imported = out["import_directory[openldap]"]
    assert out["start_run"]["mode"] == "incremental"
    assert "purged past the watermark" in imported["full_import_reason"]
    assert imported["delta_read"] is False and imported["read"] == "full read"
    assert (imported["adds"], imported["updates"], imported["deletes"]) == (0, 1, 0)
    assert imported["unchanged"] == imported["objects"] - 1
    assert_same(snapshot(inc), snapshot(full), "after the fallback to a full read")
    assert inc.sql("SELECT title FROM user_profiles WHERE user_name = 'p0003'") == [("changed",)]


def test_a_delta_sees_the_dangling_references_a_full_read_sees_without_refint(slapd_fresh, tmp_path):
    """slapd without refint keeps a deleted or renamed person's old DN in ``member`` and ``manager``: a full read
    sees it unresolved, and resolving again when an object takes that DN. The delta re-reads the objects holding
    such values instead of assuming the directory rewrote them (regression: a person re-created at the same DN
    lost their memberships and reports in incremental runs only)."""
    directory = {"name": "openldap", "preset": "inetorgperson", "containers": [PEOPLE, GROUPS]}
    inc = LdapSyncHarness(tmp_path / "inc", slapd_info(slapd_fresh), directory, gates=NO_LIMITS)
    full = LdapSyncHarness(tmp_path / "full", slapd_info(slapd_fresh), directory, gates=NO_LIMITS)

    def both() -> dict:
        out = inc.sync("incremental")
        full.sync("full")
        assert out["import_directory[openldap]"]["delta_read"] and out["synchronize"]["delta"]
        assert_same(snapshot(inc), snapshot(full), "this step")
        return out["import_directory[openldap]"]

    def managers(h: LdapSyncHarness) -> list[tuple]:
        return h.sql("SELECT user_name, manager FROM user_profiles WHERE user_name IN ('p0006', 'p0011') "
                     "ORDER BY 1")

    def groups_of(h: LdapSyncHarness, mail: str) -> list[tuple]:
        return h.sql("SELECT g.name FROM group_memberships m JOIN user_groups g ON g.group_id = m.group_id "
                     "JOIN user_profiles p ON p.profile_id = m.member_id WHERE p.work_email = ? AND "
                     "p.state = 'active' ORDER BY 1", mail)

    inc.sync("full")
    full.sync("full")
    conn = slapd_fresh.connect()
    p0001 = f"uid=p0001,{PEOPLE}"  # manages p0006..p0010, member of both groups
    assert conn.delete(p0001)
    assert both()["delta_rereads"] == 7  # 5 reports and 2 groups still name the old DN
    assert managers(inc)[0] == ("p0006", None)
    assert conn.add(p0001, ["inetOrgPerson"], {"uid": "p0001", "cn": "Again", "sn": "Again",
                                               "mail": "p0001@example.org"})  # a new entryUUID, the same DN
    both()
    assert managers(inc)[0] == ("p0006", "i:0#.f|membership|p0001@example.org")
    assert groups_of(inc, "p0001@example.org") == [("everyone",), ("managers",)]
    assert conn.modify_dn(f"uid=p0002,{PEOPLE}", "uid=p0002-renamed")
    assert both()["delta_rereads"] == 7
    assert managers(inc)[1] == ("p0011", None)  # still names uid=p0002: dangling, as a full read sees it
    assert groups_of(inc, "p0002@example.org") == []


# -- write-back ----------------------------------------------------------------------------------
def test_write_back_of_pictures_with_a_refused_write_reported_while_others_go_on(slapd_fresh, tmp_path):
    writer = slapd_fresh.add_bind_user("profilesync", "writer-pw", "writer")
    conn = slapd_fresh.connect()
    # A pilotPerson (a `person` with a mail, no inetOrgPerson) is in scope but may not hold jpegPhoto: the
    # server refuses. (Without a mail it would have no account name: quarantined, no profile to write back.)
    assert conn.add(f"cn=Plain Person,{PEOPLE}", ["person", "pilotPerson"],
                    {"cn": "Plain Person", "sn": "Person", "mail": "plain@example.org"})
    harness = LdapSyncHarness(tmp_path, slapd_info(slapd_fresh, login=writer, password="writer-pw",
                                                   base_dns=[PEOPLE, GROUPS]),
                              {"name": "openldap", "preset": "inetorgperson",
                               "mappings": {"picture": {"source": "jpegPhoto", "direction": "both"}}})
    first = harness.sync()
    assert first["export_profile_store"]["adds"] == 51
    assert first["export_directory[openldap]"]["message"] == "nothing to write back"

    pictures = {"p0002@example.org": b"\xff\xd8\xff\xe0 two", "p0003@example.org": b"\xff\xd8\xff\xe0 three"}
    for mail, picture in pictures.items():
        harness.sql("UPDATE user_profiles SET picture = ? WHERE work_email = ?", picture, mail)
    harness.sql("UPDATE user_profiles SET picture = ? WHERE preferred_name IS NULL AND user_name IS NULL",
                b"\xff\xd8 plain")
    second = harness.sync()
    assert second["synchronize"]["held_for_writeback"] == 3  # the directory's old (empty) value does not win
    assert second["export_profile_store"]["updates"] == 0
    export = second["export_directory[openldap]"]
    assert (export["updates"], export["errors"]) == (2, 1)
    (refused,) = export["refused_samples"]
    assert refused["dn"] == f"cn=Plain Person,{PEOPLE}" and "objectClassViolation" in refused["reason"]
    assert second["confirm_directory[openldap]"]["confirmed"] == 2
    for mail, picture in pictures.items():
        uid = mail.split("@")[0]
        conn.search(f"uid={uid},{PEOPLE}", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["jpegPhoto"])
        assert conn.response[0]["raw_attributes"]["jpegPhoto"] == [picture]

    third = harness.sync()  # no flip-flop: the import brings back exactly what was written
    assert third["export_profile_store"]["updates"] == 0 and third["synchronize"]["held_for_writeback"] == 1
    assert third["export_directory[openldap]"]["errors"] == 1  # the refused one is tried (and reported) again
    assert harness.sql("SELECT count(*) FROM user_profiles WHERE picture IS NOT NULL") == [(3,)]
