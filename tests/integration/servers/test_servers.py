"""Smoke tests of the real test servers (tests/servers): they start, answer, and behave the
way the engine's integration tests rely on. No mocks: slapd, Samba AD DC, PostgreSQL."""

from __future__ import annotations

import io
import re
import ssl
import uuid

import pytest

ldap3 = pytest.importorskip("ldap3")

from ldap3.core.exceptions import LDAPException  # noqa: E402

from tests.servers import PostgresServer, SambaDC, SlapdServer  # noqa: E402
from tests.servers.fixtures import (  # noqa: E402
    SERVICE_ACCOUNT,
    SERVICE_PASSWORD,
    default_slapd_entries,
)

UAC_DISABLED = "1.2.840.113556.1.4.803:=2"  # LDAP_MATCHING_RULE_BIT_AND, ACCOUNTDISABLE
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _conn(uri: str, user: str | None, password: str | None, **kwargs) -> "ldap3.Connection":
    server = ldap3.Server(uri, get_info=ldap3.NONE, connect_timeout=5, **kwargs.pop("server_kw", {}))
    return ldap3.Connection(server, user=user, password=password, receive_timeout=30, **kwargs)


def _people(n: int, base: str, prefix: str = "x") -> list:
    return [
        (f"uid={prefix}{i:05d},ou=people,{base}",
         {"objectClass": ["inetOrgPerson"], "uid": f"{prefix}{i:05d}", "cn": f"X {i}",
          "sn": f"{i}", "mail": f"{prefix}{i:05d}@example.org"})
        for i in range(n)
    ]


# =========================================================================== slapd


def test_slapd_admin_bind_and_wrong_password(slapd_server: SlapdServer) -> None:
    assert slapd_server.uri.startswith("ldap://127.0.0.1:")
    good = _conn(slapd_server.uri, slapd_server.admin_dn, slapd_server.admin_password)
    assert good.bind(), good.result
    good.search(slapd_server.base_dn, "(objectClass=inetOrgPerson)", attributes=["uid"])
    assert len(good.entries) == 50  # the default seed
    good.unbind()
    bad = _conn(slapd_server.uri, slapd_server.admin_dn, "wrong")
    assert not bad.bind()
    assert bad.result["result"] == 49  # invalidCredentials


def test_slapd_bulk_load_then_paged_search_returns_all_with_entry_uuid(slapd_factory) -> None:
    server = slapd_factory()
    server.load_entries(_people(300, server.base_dn))  # offline, slapadd (speed: make bench, DESIGN §6b)
    server.start()
    assert server.running
    conn = server.connect()
    results = conn.extend.standard.paged_search(
        server.people_dn, "(objectClass=inetOrgPerson)",
        attributes=["uid", "entryUUID", "entryCSN", "modifyTimestamp"],
        paged_size=70, generator=False,
    )
    entries = [r for r in results if r["type"] == "searchResEntry"]
    assert len(entries) == 300
    uuids = {e["attributes"]["entryUUID"][0] for e in entries}
    assert len(uuids) == 300 and all(UUID_RE.match(u) for u in uuids)
    assert all(e["attributes"]["entryCSN"] for e in entries)
    # slapadd -w wrote the suffix contextCSN: no entry is newer than it.
    conn.search(server.base_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["contextCSN"])
    context_csn = conn.entries[0].contextCSN.values[0]
    assert max(e["attributes"]["entryCSN"][0] for e in entries) <= context_csn
    conn.unbind()


def test_slapd_accesslog_records_delete_and_restore_undoes_it(slapd_fresh: SlapdServer) -> None:
    conn = slapd_fresh.connect()
    victim = f"uid=p0007,ou=people,{slapd_fresh.base_dn}"
    conn.search(victim, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["entryUUID"])
    victim_uuid = str(conn.entries[0].entryUUID)
    assert conn.delete(victim), conn.result
    conn.search(slapd_fresh.accesslog_dn, f"(&(reqType=delete)(reqDN={victim}))",
                attributes=["reqDN", "reqEntryUUID", "reqResult", "reqStart"])
    assert len(conn.entries) == 1
    logged = conn.entries[0]
    assert str(logged.reqEntryUUID) == victim_uuid
    assert int(str(logged.reqResult)) == 0
    conn.unbind()

    slapd_fresh.restore("seeded")
    slapd_fresh.start()
    conn = slapd_fresh.connect()
    assert conn.search(victim, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["entryUUID"])
    assert str(conn.entries[0].entryUUID) == victim_uuid
    conn.search(slapd_fresh.accesslog_dn, "(reqType=delete)", attributes=["reqDN"])
    assert conn.entries == []
    conn.unbind()


def test_slapd_syncrepl_reports_delete_after_restart(slapd_fresh: SlapdServer) -> None:
    """syncprov's session log comes from the accesslog, so a delete survives a restart."""
    ldap = pytest.importorskip("ldap")
    syncrepl = pytest.importorskip("ldap.syncrepl")
    ldapobject = pytest.importorskip("ldap.ldapobject")

    class Consumer(ldapobject.SimpleLDAPObject, syncrepl.SyncreplConsumer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.cookie = None
            self.deleted: list[str] = []
            self.present_calls = 0
            self.added: list[str] = []

        def syncrepl_get_cookie(self):
            return self.cookie

        def syncrepl_set_cookie(self, cookie):
            self.cookie = cookie

        def syncrepl_entry(self, dn, attributes, uuid):
            self.added.append(dn)

        def syncrepl_delete(self, uuids):
            self.deleted.extend(uuids)

        def syncrepl_present(self, uuids, refreshDeletes=False):
            self.present_calls += 1

    def refresh(consumer: Consumer) -> None:
        msgid = consumer.syncrepl_search(slapd_fresh.base_dn, ldap.SCOPE_SUBTREE,
                                         mode="refreshOnly", filterstr="(objectClass=inetOrgPerson)",
                                         attrlist=["uid"])
        while consumer.syncrepl_poll(msgid=msgid, all=1, timeout=30):
            pass

    consumer = Consumer(slapd_fresh.uri)
    consumer.simple_bind_s(slapd_fresh.admin_dn, slapd_fresh.admin_password)
    refresh(consumer)
    assert len(consumer.added) == 50 and consumer.cookie
    admin = slapd_fresh.connect()
    victim = f"uid=p0011,ou=people,{slapd_fresh.base_dn}"
    admin.search(victim, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["entryUUID"])
    victim_uuid = str(admin.entries[0].entryUUID)
    assert admin.delete(victim)
    admin.unbind()
    consumer.unbind_s()

    slapd_fresh.stop()
    slapd_fresh.start()  # same port; the in-memory session log is gone, the accesslog is not
    again = Consumer(slapd_fresh.uri)
    again.simple_bind_s(slapd_fresh.admin_dn, slapd_fresh.admin_password)
    again.cookie = consumer.cookie
    refresh(again)
    again.unbind_s()
    assert [str(uuid.UUID(bytes=u)) if isinstance(u, bytes) else u for u in again.deleted] == [victim_uuid]
    assert again.added == []


def test_slapd_acls_reader_writer_and_no_people(slapd_fresh: SlapdServer) -> None:
    reader = slapd_fresh.add_bind_user("reader", "reader-pw", "reader")
    writer = slapd_fresh.add_bind_user("writer", "writer-pw", "writer")
    blind = slapd_fresh.add_bind_user("blind", "blind-pw", "no-people")
    people = slapd_fresh.people_dn
    target = f"uid=p0001,{people}"

    anonymous = _conn(slapd_fresh.uri, None, None, auto_bind=True)
    anonymous.search(people, "(objectClass=inetOrgPerson)", attributes=["uid"])
    assert anonymous.entries == []
    anonymous.unbind()

    conn = _conn(slapd_fresh.uri, reader, "reader-pw", auto_bind=True)
    conn.search(people, "(objectClass=inetOrgPerson)", attributes=["uid", "userPassword"])
    assert len(conn.entries) == 50
    conn.search(reader, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["userPassword"])
    assert conn.response[0]["raw_attributes"].get("userPassword", []) == []  # nobody reads it...
    admin = slapd_fresh.connect()
    admin.search(reader, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["userPassword"])
    assert admin.response[0]["raw_attributes"]["userPassword"] == [b"reader-pw"]  # ...but it is set
    admin.unbind()
    assert not conn.modify(target, {"title": [(ldap3.MODIFY_REPLACE, ["Hacker"])]})
    assert conn.result["result"] == 50  # insufficientAccessRights
    conn.search(slapd_fresh.accesslog_dn, "(objectClass=*)", search_scope=ldap3.BASE)
    assert len(conn.entries) == 1  # bound users may read the accesslog
    conn.unbind()

    conn = _conn(slapd_fresh.uri, blind, "blind-pw", auto_bind=True)
    conn.search(slapd_fresh.base_dn, "(objectClass=inetOrgPerson)", attributes=["uid"])
    assert [e.entry_dn for e in conn.entries if e.entry_dn.endswith(people)] == []
    conn.search(f"ou=groups,{slapd_fresh.base_dn}", "(objectClass=groupOfNames)", attributes=["cn"])
    assert len(conn.entries) == 2
    conn.unbind()

    conn = _conn(slapd_fresh.uri, writer, "writer-pw", auto_bind=True)
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
    assert conn.modify(target, {"jpegPhoto": [(ldap3.MODIFY_REPLACE, [photo])]}), conn.result
    conn.search(target, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["jpegPhoto"])
    assert conn.entries[0].jpegPhoto.value == photo
    conn.unbind()


def test_slapd_size_limit_like_ad_max_page_size(slapd_factory) -> None:
    server = slapd_factory(size_limit=100, tls=False)
    server.load_entries(_people(250, server.base_dn))
    server.start()
    reader = server.add_bind_user("r", "r-pw")
    conn = _conn(server.uri, reader, "r-pw", auto_bind=True)
    conn.search(server.people_dn, "(objectClass=inetOrgPerson)", attributes=["uid"])
    assert conn.result["result"] == 4  # sizeLimitExceeded
    assert len(conn.entries) == 100
    got = conn.extend.standard.paged_search(server.people_dn, "(objectClass=inetOrgPerson)",
                                            attributes=["uid"], paged_size=100, generator=False)
    assert len([r for r in got if r["type"] == "searchResEntry"]) == 250
    conn.unbind()


def test_slapd_sigkill_mid_search_then_restart(slapd_factory) -> None:
    server = slapd_factory(tls=False)
    server.load_entries(_people(2000, server.base_dn))
    server.start()
    port = server.port
    conn = server.connect()
    pages = conn.extend.standard.paged_search(server.people_dn, "(objectClass=inetOrgPerson)",
                                              attributes=["uid"], paged_size=100, generator=True)
    seen = 0
    with pytest.raises(LDAPException):
        for _ in pages:
            seen += 1
            if seen == 150:  # into the second page
                server.kill()
    assert 150 <= seen < 2000
    assert not server.running
    server.start()
    assert server.port == port
    conn = server.connect()
    got = conn.extend.standard.paged_search(server.people_dn, "(objectClass=inetOrgPerson)",
                                            attributes=["uid"], paged_size=500, generator=False)
    assert len([r for r in got if r["type"] == "searchResEntry"]) == 2000
    conn.unbind()


def test_slapd_ldaps_and_starttls_need_the_test_ca(slapd_server: SlapdServer) -> None:
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(slapd_server.ca_file))
    conn = _conn(slapd_server.ldaps_uri, slapd_server.admin_dn, slapd_server.admin_password,
                 server_kw={"tls": tls})
    assert conn.bind(), conn.result
    assert conn.server.ssl
    conn.unbind()
    plain = _conn(slapd_server.uri, slapd_server.admin_dn, slapd_server.admin_password,
                  server_kw={"tls": tls})
    plain.open()
    assert plain.start_tls()
    assert plain.bind()
    plain.unbind()
    untrusted = _conn(slapd_server.ldaps_uri, slapd_server.admin_dn, slapd_server.admin_password,
                      server_kw={"tls": ldap3.Tls(validate=ssl.CERT_REQUIRED)})
    with pytest.raises(LDAPException):
        untrusted.bind()


def test_default_slapd_seed_has_manager_chain() -> None:
    entries = dict(default_slapd_entries(people=11))
    assert "manager" not in entries["uid=p0000,ou=people,dc=example,dc=org"]
    assert entries["uid=p0010,ou=people,dc=example,dc=org"]["manager"] == \
        "uid=p0001,ou=people,dc=example,dc=org"


# =========================================================================== Samba AD DC


def _samba_admin(dc: SambaDC, **kwargs) -> "ldap3.Connection":
    return _conn(dc.uri, dc.admin_upn, dc.admin_password, auto_bind=True, **kwargs)


def test_samba_binds_admin_and_service_account(samba_dc: SambaDC) -> None:
    assert samba_dc.uri.startswith("ldap://127.0.0.1:")
    assert samba_dc.base_dn == "DC=contoso,DC=com"
    for user in (samba_dc.admin_upn, samba_dc.admin_dn, samba_dc.admin_netbios):
        conn = _conn(samba_dc.uri, user, samba_dc.admin_password)
        assert conn.bind(), (user, conn.result)
        conn.unbind()
    bad = _conn(samba_dc.uri, samba_dc.admin_upn, "not-the-password")
    assert not bad.bind()
    assert bad.result["result"] == 49
    # The seeded service account got its password offline and can bind and read.
    svc = _conn(samba_dc.uri, f"{SERVICE_ACCOUNT}@contoso.com", SERVICE_PASSWORD, auto_bind=True)
    svc.search(f"OU=People,{samba_dc.base_dn}", "(objectClass=user)", attributes=["sAMAccountName"])
    assert len(svc.entries) == 50
    svc.unbind()
    assert UUID_RE.match(samba_dc.invocation_id or "")


def test_samba_seeded_objects_look_like_ad(samba_dc: SambaDC) -> None:
    conn = _samba_admin(samba_dc)
    conn.search(f"OU=People,{samba_dc.base_dn}", "(sAMAccountName=u0001)",
                attributes=["objectGUID", "objectSid", "uSNChanged", "uSNCreated", "whenCreated",
                            "memberOf", "manager", "proxyAddresses", "userAccountControl"])
    assert len(conn.entries) == 1
    raw = conn.response[0]["raw_attributes"]
    assert len(raw["objectGUID"][0]) == 16
    assert int(raw["uSNChanged"][0]) >= int(raw["uSNCreated"][0]) > 0
    member_of = {v.decode() for v in raw["memberOf"]}
    assert member_of == {f"CN=Engineering,OU=Groups,{samba_dc.base_dn}",
                         f"CN=All People,OU=Groups,{samba_dc.base_dn}"}
    assert raw["manager"][0].decode() == f"CN=User 0000,OU=People,{samba_dc.base_dn}"
    assert b"SMTP:u0001@contoso.com" in raw["proxyAddresses"]
    # the bitwise matching rule finds exactly the disabled seed user
    conn.search(f"OU=People,{samba_dc.base_dn}", f"(userAccountControl:{UAC_DISABLED})",
                attributes=["sAMAccountName"])
    assert [str(e.sAMAccountName) for e in conn.entries] == ["u0003"]
    conn.search(f"OU=People,{samba_dc.base_dn}",
                f"(&(objectClass=user)(!(userAccountControl:{UAC_DISABLED})))",
                attributes=["sAMAccountName"])
    assert len(conn.entries) == 49
    # paged search with a small page
    got = conn.extend.standard.paged_search(samba_dc.base_dn, "(objectCategory=person)",
                                            attributes=["objectGUID"], paged_size=7, generator=False)
    assert len([r for r in got if r["type"] == "searchResEntry"]) >= 52  # 50 + svc + Administrator
    conn.unbind()


def test_samba_offline_seed_passes_dbcheck(samba_dc: SambaDC) -> None:
    """The offline-seeded session data is consistent: links/backlinks, metadata, SDs."""
    out = samba_dc.dbcheck(samba_dc.base_dn)
    checked = int(re.search(r"Checked (\d+) objects", out).group(1))
    assert checked >= 56  # the seed alone is 56 objects


def test_samba_online_add_dirsync_and_usn(samba_dc_fresh: SambaDC) -> None:
    dc = samba_dc_fresh
    conn = _samba_admin(dc)
    people = f"OU=People,{dc.base_dn}"
    # Like Windows AD, DirSync only accepts a naming context as its base.
    sync = conn.extend.microsoft.dir_sync(dc.base_dn, "(objectClass=user)",
                                          attributes=["sAMAccountName", "telephoneNumber"])
    first: list = []
    while sync.more_results:
        first.extend(r for r in sync.loop() if r.get("type") == "searchResEntry")
    cookie = sync.cookie
    assert cookie
    assert len([r for r in first if r["dn"].lower().endswith(people.lower())]) == 50

    conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["highestCommittedUSN"])
    usn_before = int(conn.entries[0].highestCommittedUSN.value)
    new_dn = f"CN=New Person,{people}"
    assert conn.add(new_dn, "user", {"sAMAccountName": "newperson", "userAccountControl": "544",
                                     "userPrincipalName": "newperson@contoso.com"}), conn.result
    changed = f"CN=User 0005,{people}"
    assert conn.modify(changed, {"telephoneNumber": [(ldap3.MODIFY_REPLACE, ["+1 555 9999"])]})
    conn.search(new_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["uSNChanged", "objectGUID"])
    assert int(conn.entries[0].uSNChanged.value) > usn_before

    deleted = f"CN=User 0009,{people}"
    guids = {}
    for dn in (new_dn, changed, deleted):
        conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["objectGUID"])
        guids[dn] = conn.response[0]["raw_attributes"]["objectGUID"][0]
    assert conn.delete(deleted), conn.result

    # Samba returns isDeleted on a tombstone only when it is asked for.
    delta = conn.extend.microsoft.dir_sync(dc.base_dn, "(objectClass=user)",
                                           attributes=["sAMAccountName", "telephoneNumber", "isDeleted"],
                                           cookie=cookie)
    changes: list = []
    while delta.more_results:
        changes.extend(r for r in delta.loop() if r.get("type") == "searchResEntry")
    by_guid = {r["raw_attributes"]["objectGUID"][0]: r for r in changes}
    assert set(by_guid) == set(guids.values())  # exactly the add, the modify and the delete
    tombstone = by_guid[guids[deleted]]
    assert tombstone["raw_attributes"]["isDeleted"] == [b"TRUE"]
    assert "CN=Deleted Objects" in tombstone["dn"]
    assert by_guid[guids[changed]]["raw_attributes"]["telephoneNumber"] == [b"+1 555 9999"]
    assert delta.cookie and delta.cookie != cookie

    # The tombstone is visible with the show-deleted control (1.2.840.113556.1.4.417).
    conn.search(dc.base_dn, "(&(isDeleted=TRUE)(sAMAccountName=u0009))", attributes=["isDeleted"],
                controls=[("1.2.840.113556.1.4.417", True, None)])
    assert len(conn.entries) == 1
    conn.unbind()


def test_samba_large_group_ranged_member_retrieval(samba_dc_fresh: SambaDC) -> None:
    """5,000 members: ranged retrieval works when asked for; Samba gives all values when
    not (Windows AD would cap at 1,500) and has no 1,000-entry search cap."""
    dc = samba_dc_fresh
    ou = f"OU=Big,{dc.base_dn}"
    n = 5000
    users = [(f"CN=Big {i:05d},{ou}", {"objectClass": "user", "sAMAccountName": f"big{i:05d}",
                                        "userAccountControl": "544"}) for i in range(n)]
    group = f"CN=Big Group,{ou}"
    stats = dc.seed([(ou, {"objectClass": "organizationalUnit"}), *users,
                     (group, {"objectClass": "group", "sAMAccountName": "Big Group",
                              "member": [dn for dn, _ in users]})])
    assert stats["add"] == n + 2 and dc.running
    try:
        # An online add still works against the offline-seeded database.
        conn = _samba_admin(dc, auto_range=False, return_empty_attributes=False)
        extra = f"CN=Online Member,{ou}"
        assert conn.add(extra, "user", {"sAMAccountName": "onlinemember"}), conn.result
        assert conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [extra])]}), conn.result

        members: list[str] = []
        low, step, ranges = 0, 1000, []
        while True:
            conn.search(group, "(objectClass=*)", search_scope=ldap3.BASE,
                        attributes=[f"member;range={low}-{low + step - 1}"])
            raw = conn.response[0]["raw_attributes"]
            (attr,) = [k for k in raw if k.lower().startswith("member;range=")]
            ranges.append(attr)
            members.extend(v.decode() for v in raw[attr])
            if attr.endswith("-*"):
                break
            low = int(attr.rsplit("-", 1)[1]) + 1
        assert len(members) == n + 1 and len(set(members)) == n + 1
        assert ranges[0] == "member;range=0-999" and ranges[-1] == f"member;range={n}-*"

        conn.search(group, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["member;range=0-*"])
        (attr,) = conn.response[0]["raw_attributes"].keys()
        assert attr == "member;range=0-*" and len(conn.response[0]["raw_attributes"][attr]) == n + 1

        conn.search(ou, "(objectClass=user)", attributes=["objectGUID"])  # no paging control
        assert conn.result["result"] == 0 and len(conn.entries) == n + 1

        conn.search(f"CN=Big 00042,{ou}", "(objectClass=*)", search_scope=ldap3.BASE,
                    attributes=["memberOf", "objectGUID"])
        assert conn.response[0]["raw_attributes"]["memberOf"] == [group.encode()]
        conn.unbind()
    finally:
        dc.restore("seeded")
        dc.start()
    conn = _samba_admin(dc)
    conn.search(ou, "(objectClass=*)", search_scope=ldap3.BASE)
    assert conn.result["result"] == 32  # noSuchObject: restore removed the seed
    conn.unbind()


def test_samba_ldaps_and_starttls_with_the_test_ca(samba_dc: SambaDC) -> None:
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(samba_dc.ca_file))
    conn = _conn(samba_dc.ldaps_uri, samba_dc.admin_upn, samba_dc.admin_password,
                 server_kw={"tls": tls})
    assert conn.bind(), conn.result
    conn.search(samba_dc.base_dn, "(objectClass=domain)", search_scope=ldap3.BASE)
    assert len(conn.entries) == 1
    conn.unbind()
    plain = _conn(samba_dc.uri, samba_dc.admin_upn, samba_dc.admin_password, server_kw={"tls": tls})
    plain.open()
    assert plain.start_tls()
    assert plain.bind()
    plain.unbind()


def test_samba_killed_mid_search_then_restarted(samba_dc: SambaDC) -> None:
    uri = samba_dc.uri
    conn = _samba_admin(samba_dc)
    pages = conn.extend.standard.paged_search(samba_dc.base_dn, "(objectClass=*)",
                                              attributes=["objectGUID"], paged_size=20, generator=True)
    seen = 0
    try:
        with pytest.raises(LDAPException):
            for _ in pages:
                seen += 1
                if seen == 30:
                    samba_dc.kill()
        assert 30 <= seen
        assert not samba_dc.running
        with pytest.raises(LDAPException):
            _conn(uri, samba_dc.admin_upn, samba_dc.admin_password, auto_bind=True)
    finally:
        samba_dc.start()
    assert samba_dc.uri == uri
    conn = _samba_admin(samba_dc)
    conn.search(samba_dc.base_dn, "(objectClass=domain)", search_scope=ldap3.BASE)
    assert len(conn.entries) == 1
    conn.unbind()


# =========================================================================== PostgreSQL


def test_postgres_create_table_and_copy(postgres_url: str, postgres_server: PostgresServer) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    assert postgres_url.startswith("postgresql+psycopg2://profile_sync:")
    assert f"@127.0.0.1:{postgres_server.port}/" in postgres_url
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL)")
            cursor = conn.connection.dbapi_connection.cursor()
            data = "".join(f"{i},Person {i}\n" for i in range(5000))
            cursor.copy_expert("COPY people (id, name) FROM STDIN WITH (FORMAT csv)", io.StringIO(data))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*), max(id) FROM people").one() == (5000, 4999)
            assert conn.exec_driver_sql("SELECT current_user").scalar() == "profile_sync"
    finally:
        engine.dispose()
    wrong = sqlalchemy.create_engine(postgres_url.replace(":profile-sync-pw@", ":nope@"))
    with pytest.raises(sqlalchemy.exc.OperationalError, match="password authentication failed"):
        wrong.connect()
    wrong.dispose()


def test_postgres_url_fixture_gives_an_empty_database(postgres_url: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            tables = conn.exec_driver_sql(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).scalar()
        assert tables == 0  # the previous test's table is gone
    finally:
        engine.dispose()


def test_postgres_kill_and_restart(postgres_server: PostgresServer) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    port = postgres_server.port
    postgres_server.kill()
    assert not postgres_server.running
    engine = sqlalchemy.create_engine(postgres_server.url, connect_args={"connect_timeout": 2})
    with pytest.raises(sqlalchemy.exc.OperationalError):
        engine.connect()
    engine.dispose()
    postgres_server.start()
    assert postgres_server.port == port
    engine = sqlalchemy.create_engine(postgres_server.url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()
