"""Import rates from the real test servers at 10,000+ entries, and how long the servers take to come up.

    PYTHONPATH=include:plugins:. python -m tests.bench.ldap_rates [--people 10000] [--json out.json]

For each server (slapd; Samba AD DC, which needs root): bring-up times (the session fixtures' path),
then full reads of ``people`` users + their groups (the default seeds: a manager chain, an
"everyone"/"All People" group holding every user, so ranged retrieval is exercised on AD), measured as:

* ``reader``: ``LdapDirectoryReader.read_full`` (python-ldap, paged, ranged ``member`` on AD) → Entries
* ``reader+cs``: the same, then ``build_connector_space`` (what import_directory does)
* ``ldap3 raw``: ldap3's own paged search, raw attributes, no Entries (the reader before python-ldap)
* ``python-ldap``: python-ldap (libldap, C BER decoding) paged search, same attributes
* ``ldapsearch``: the OpenLDAP command-line client, same bases, filter, attributes and page size

Rates are entries per second of wall time on this machine; nothing asserts on them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "include", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def python_ldap_count(uri: str, who: str, password: str, base: str, search_filter: str, attributes: list[str],
                      page: int) -> int:
    import ldap
    from ldap.controls import SimplePagedResultsControl

    conn = ldap.initialize(uri)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    conn.simple_bind_s(who, password)
    control = SimplePagedResultsControl(True, size=page, cookie=b"")
    n = 0
    while True:
        msgid = conn.search_ext(base, ldap.SCOPE_SUBTREE, search_filter, attributes, serverctrls=[control])
        _, data, _, controls = conn.result3(msgid)
        n += sum(1 for dn, _ in data if dn)
        cookie = next((c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType), b"")
        if not cookie:
            break
        control.cookie = cookie
    conn.unbind_s()
    return n


def ldap3_raw_count(uri: str, who: str, password: str, base: str, search_filter: str, attributes: list[str],
                    page: int) -> int:
    import ldap3

    conn = ldap3.Connection(ldap3.Server(uri, get_info=ldap3.NONE), who, password, auto_bind=True,
                            check_names=False, auto_range=False, return_empty_attributes=False, auto_referrals=False)
    n = sum(1 for r in conn.extend.standard.paged_search(base, search_filter, attributes=attributes,
                                                         paged_size=page, generator=True)
            if r["type"] == "searchResEntry")
    conn.unbind()
    return n


def measure(name: str, info, directory_conn, uri: str, who: str, password: str, page: int) -> dict[str, Any]:
    from profile_sync.config.presets import resolve_directory
    from profile_sync.directory.ldap import LdapConnectionSettings, LdapDirectoryReader
    from profile_sync.sync.connector_space import build_connector_space

    d = resolve_directory(directory_conn)
    r = LdapDirectoryReader(d, LdapConnectionSettings.from_connection_info(name, info))
    attrs = frozenset(d.attributes)
    entries, read_s = timed(lambda: list(r.read_full(attrs)))
    space, cs_s = timed(lambda: build_connector_space(entries, d))
    n = len(entries)
    request = [a.split(";")[0] for a in r.request_attributes(attrs, r._server_type or "generic")]
    out: dict[str, Any] = {"entries": n, "largest_group": max(len(e.attributes.get("member", [])) for e in entries),
                           "reader_s": round(read_s, 2), "reader_per_s": round(n / read_s),
                           "reader_cs_per_s": round(n / (read_s + cs_s)), "cs_build_s": round(cs_s, 2)}
    raw = 0
    raw_s = 0.0
    pl = 0
    pl_s = 0.0
    for base in r.base_dns:
        c, s = timed(lambda: ldap3_raw_count(uri, who, password, base, r.object_filter, request, page))
        raw, raw_s = raw + c, raw_s + s
        c, s = timed(lambda: python_ldap_count(uri, who, password, base, r.object_filter, request, page))
        pl, pl_s = pl + c, pl_s + s
    out.update({"ldap3_raw_per_s": round(raw / raw_s), "python_ldap_per_s": round(pl / pl_s),
                "ldap3_raw_entries": raw, "python_ldap_entries": pl})
    from tests.bench.floor import ldapsearch

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        got = ldapsearch(uri, who, password, r.base_dns, r.object_filter, request, page, Path(tmp) / "out.ldif")
    out.update({"ldapsearch_per_s": round(got.count / got.seconds), "ldapsearch_entries": got.count})
    return out


def bench_slapd(people: int) -> dict[str, Any]:
    from profile_sync.config.settings import DirectoryConnection
    from profile_sync.run.context import ConnectionInfo

    from tests.servers import SlapdServer
    from tests.servers.fixtures import default_slapd_entries

    result: dict[str, Any] = {"bring_up": {}}
    t0 = time.perf_counter()  # what the session fixture does: configure (TLS), slapadd the seed, snapshot, start
    fixture = SlapdServer(tls=True)
    try:
        fixture.load_entries(default_slapd_entries())
        fixture.snapshot("seeded")
        fixture.start()
        result["bring_up"]["session_fixture_s"] = round(time.perf_counter() - t0, 2)
    finally:
        fixture.close()
    server = SlapdServer(tls=False)
    try:
        _, seed_s = timed(lambda: server.load_entries(default_slapd_entries(people=people)))
        _, start_s = timed(server.start)
        result["bring_up"].update({f"slapadd_{people}_s": round(seed_s, 2), "start_s": round(start_s, 2)})
        info = ConnectionInfo(conn_id="bench", host=server.uri, login=server.admin_dn,
                              password=server.admin_password, extra={"page_size": 1000})
        conn = DirectoryConnection(name="slapd", type="ldap", conn_id="bench", preset="inetorgperson",
                                   containers=(f"ou=people,{server.base_dn}", f"ou=groups,{server.base_dn}"))
        result["read"] = measure("slapd", info, conn, server.uri, server.admin_dn, server.admin_password, 1000)
    finally:
        server.close()
    return result


def bench_samba(people: int) -> dict[str, Any]:
    from profile_sync.config.settings import DirectoryConnection
    from profile_sync.run.context import ConnectionInfo

    from tests.servers import SambaDC
    from tests.servers.fixtures import default_samba_entries

    result: dict[str, Any] = {"bring_up": {}}
    t0 = time.perf_counter()  # the session fixture without a cache: provision, seed 50 users, snapshot, start
    fixture = SambaDC()
    try:
        _, provision_s = timed(fixture.provision)
        _, seed_s = timed(lambda: fixture.seed(default_samba_entries()))
        fixture.snapshot("seeded")
        _, start_s = timed(fixture.start)
        result["bring_up"].update({"provision_s": round(provision_s, 2), "seed_50_s": round(seed_s, 2),
                                   "start_s": round(start_s, 2),
                                   "session_fixture_s": round(time.perf_counter() - t0, 2)})
        template = fixture.workdir / "template"
        fixture.save_template(template)
        t1 = time.perf_counter()
        cached = SambaDC(template=template)
        try:
            cached.provision()
            cached.start()
            result["bring_up"]["from_cached_template_s"] = round(time.perf_counter() - t1, 2)
        finally:
            cached.close()
    finally:
        fixture.close()
    dc = SambaDC()
    try:
        dc.provision()
        stats, seed_s = timed(lambda: dc.seed(default_samba_entries(people=people)))
        dc.start()
        result["bring_up"][f"seed_{people}_s"] = round(seed_s, 2)
        info = ConnectionInfo(conn_id="bench", host=dc.uri, login=dc.admin_upn, password=dc.admin_password,
                              extra={"page_size": 1000})
        conn = DirectoryConnection(name="samba", type="ldap", conn_id="bench", preset="active_directory",
                                   containers=(f"OU=People,{dc.base_dn}", f"OU=Groups,{dc.base_dn}"))
        result["read"] = measure("samba", info, conn, dc.uri, dc.admin_upn, dc.admin_password, 1000)
    finally:
        dc.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--only", choices=["slapd", "samba"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"people": args.people, "cpus": os.cpu_count()}
    if args.only in (None, "slapd"):
        out["slapd"] = bench_slapd(args.people)
        print("slapd", json.dumps(out["slapd"]), flush=True)
    if args.only in (None, "samba"):
        if os.geteuid() != 0:
            print("samba: skipped (needs root for ip netns)")
        else:
            out["samba"] = bench_samba(args.people)
            print("samba", json.dumps(out["samba"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
