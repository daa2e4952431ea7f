"""Build small AD-shaped LDIF directories for tests, with python-ldap's LDIF writer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import ldif

BASE = "DC=contoso,DC=com"
USERS = f"OU=Users,{BASE}"


def guid(n: int) -> bytes:
    """A deterministic objectGUID (16 bytes)."""
    return uuid.UUID(int=n).bytes_le


def guid_text(n: int) -> str:
    return str(uuid.UUID(int=n))


@dataclass
class FakeDirectory:
    """An ordered set of LDIF content records (DN → attributes), written on demand."""

    entries: dict[str, dict[str, list]] = field(default_factory=dict)

    def person(self, n: int, cn: str, *, ou: str = USERS, upn: str | None = None, uac: int = 512,
               manager: str | None = None, **attrs: object) -> str:
        dn = f"CN={cn},{ou}"
        record: dict[str, list] = {
            "objectClass": [b"top", b"person", b"organizationalPerson", b"user"],
            "cn": [cn.replace("\\", "")],
            "objectGUID": [guid(n)],
            "userPrincipalName": [upn or f"user{n}@contoso.com"],
            "userAccountControl": [str(uac)],
        }
        if manager:
            record["manager"] = [manager]
        for k, v in attrs.items():
            record[k] = v if isinstance(v, list) else [v]
        self.entries[dn] = record
        return dn

    def group(self, n: int, cn: str, members: list[str], *, ou: str = USERS) -> str:
        dn = f"CN={cn},{ou}"
        self.entries[dn] = {"objectClass": [b"top", b"group"], "cn": [cn], "objectGUID": [guid(n)],
                            "member": list(members)}
        return dn

    def remove(self, dn: str) -> None:
        del self.entries[dn]

    def rename(self, dn: str, new_dn: str) -> None:
        record = self.entries.pop(dn)
        self.entries[new_dn] = record
        for other in self.entries.values():
            for key in ("manager", "member"):
                if key in other:
                    other[key] = [new_dn if v == dn else v for v in other[key]]

    def write(self, path: Path) -> Path:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("version: 1\n\n")
            writer = ldif.LDIFWriter(fh, base64_attrs=["objectGUID", "thumbnailPhoto"])
            writer.unparse(BASE, {"objectClass": [b"top", b"domain"], "dc": [b"contoso"]})
            writer.unparse(USERS, {"objectClass": [b"top", b"organizationalUnit"], "ou": [b"Users"]})
            for dn, record in self.entries.items():
                writer.unparse(dn, {k: [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in vals]
                                    for k, vals in record.items()})
        return path


def team(n: int = 20) -> FakeDirectory:
    """``n`` people (Person 1 … n, ``p<i>@contoso.com``, Person i reports to Person i // 2) and a group
    ``Everyone`` holding them all: the small directory the DAG and UI tests run on."""
    d = FakeDirectory()
    for i in range(1, n + 1):
        d.person(i, f"Person {i}", upn=f"p{i}@contoso.com",
                 manager=f"CN=Person {i // 2},{USERS}" if i > 1 else None, title=f"Title {i}")
    d.group(1000, "Everyone", [f"CN=Person {i},{USERS}" for i in range(1, n + 1)])
    return d
