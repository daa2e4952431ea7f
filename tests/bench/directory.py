"""The benchmark's directory: the sample generator's people and groups, bulk-loaded into slapd, and the
1 % of changes an incremental run must find.

People come from ``profile_sync.sample`` (inetOrgPerson flavour: ``ou=people,dc=example,dc=org`` and
groups beside it), loaded offline with ``slapadd`` by ``tests.servers.SlapdServer``. The changes are
made online, through LDAP, so slapd stamps them (entryCSN) and logs deletes (accesslog) as it would
for any client: a title changed for most of them, a few people deleted (people who manage nobody,
so nobody else's profile changes) and as many added.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from profile_sync.sample import SampleDirectory, generate, render_dns, write_ldif

FLAVOUR = "inetorgperson"
BASE_DN = "dc=example,dc=org"
EXCLUDED = "ou=Service Accounts,ou=people,dc=example,dc=org"


def sample(people: int, groups: int) -> SampleDirectory:
    return generate(people=people, groups=groups, seed=42)


def load(server, directory: SampleDirectory) -> None:  # noqa: ANN001  (tests.servers.SlapdServer)
    """slapadd the directory (the LDIF carries the suffix and every OU)."""
    path = server.workdir / "bench.ldif"
    write_ldif(directory, path, FLAVOUR, version_line=False)  # slapadd 2.5 refuses "version: 1"
    try:
        server.load_ldif(path)
    finally:
        path.unlink(missing_ok=True)


@dataclass
class Changes:
    """What the incremental run must export: account names (lower-case mail) by kind."""

    modified: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    added: set[str] = field(default_factory=set)

    @property
    def all(self) -> set[str]:
        return self.modified | self.deleted | self.added

    def describe(self) -> str:
        return f"{len(self.modified):,} modified, {len(self.deleted):,} deleted, {len(self.added):,} added"


def change(uri: str, bind_dn: str, password: str, directory: SampleDirectory, share: float, round_: int = 0,
           gone: set[str] | frozenset[str] = frozenset()) -> Changes:
    """Change ``share`` of the people through LDAP; 1 % of 100,000 is 990 modified, 5 deleted, 5 added.

    ``round_``: another round of changes after earlier ones (other people, new titles, new names for the added
    people); ``gone``: the mail addresses of the people earlier rounds deleted (never chosen again)."""
    import ldap
    import ldap.modlist

    dns = render_dns(directory, FLAVOUR)
    planted = _planted(directory)
    managers = {p.manager_key for p in directory.people if p.manager_key}
    accounts = {}
    for p in directory.people:
        if p.mail:
            accounts.setdefault(p.mail.lower(), []).append(p.key)
    ordinary = [p for p in directory.people
                if p.mail and p.key not in planted and len(accounts[p.mail.lower()]) == 1
                and not dns[p.key].lower().endswith("," + EXCLUDED.lower()) and p.mail.lower() not in gone]
    total = max(3, round(len(directory.people) * share))
    few = max(1, total // 200)
    rnd = random.Random(1 + round_)
    tag = f" r{round_}" if round_ else ""
    chosen = rnd.sample(ordinary, min(len(ordinary), total))
    deleted = [p for p in chosen if p.key not in managers][:few]
    modified = [p for p in chosen if p not in deleted][: total - 2 * few]
    template = next(p for p in ordinary if p.key not in managers)
    parent = dns[template.key].split(",", 1)[1]
    out = Changes()
    conn = ldap.initialize(uri)
    try:
        conn.simple_bind_s(bind_dn, password)
        for p in modified:
            conn.modify_s(dns[p.key], [(ldap.MOD_REPLACE, "title", [f"Changed title {p.key}{tag}".encode()])])
            out.modified.add(p.mail.lower())
        for p in deleted:
            conn.delete_s(dns[p.key])
            out.deleted.add(p.mail.lower())
        for i in range(few):
            name = f"bench-added-{i}" + (f"-r{round_}" if round_ else "")
            mail = f"{name.replace('-', '.')}@example.org"
            conn.add_s(f"uid={name},{parent}", ldap.modlist.addModlist({
                "objectClass": [b"top", b"person", b"organizationalPerson", b"inetOrgPerson"],
                "uid": [name.encode()], "cn": [f"Bench Added {i}{tag}".encode()],
                "sn": [b"Added"], "mail": [mail.encode()], "title": [b"New hire"]}))
            out.added.add(mail)
    finally:
        conn.unbind_s()
    return out


def _planted(directory: SampleDirectory) -> set[str]:
    """People the generator planted as edge cases (cycles, dangling references, special names…)."""
    e = directory.expectations
    keys = {e.ceo_key, e.disabled_manager_key, e.out_of_scope_manager_key, *e.service_account_keys,
            *e.disabled_keys, *e.dangling_manager_keys, *e.manager_cycle, *e.forward_manager_keys,
            *e.special_cn_keys.values(), *e.special_container_keys}
    return {k for k in keys if k}
