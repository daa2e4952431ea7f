"""Objects whose references name given DNs: what a delta import re-reads when objects enter scope.

When an object moves into the selected containers from outside them (or is created outside and moved
in), the server's referential integrity (slapd's refint, AD's linked attributes) rewrites the
``member`` / ``uniqueMember`` / ``manager`` values that named its old DN, without those objects
showing as changed (no new entryCSN, USN or DirSync entry). A delta cannot know the old DN when the
object was never in the connector space (a full import reads only the selected containers), so it
asks the server instead: one paged search per selected container for people and groups whose
reference attributes equal the entering objects' current DNs, at most ``DNS_PER_SEARCH`` DNs to a
filter. The server compares the values by their matching rule (distinguishedNameMatch; for
``uniqueMember`` uniqueMemberMatch, so a value with a UID is found too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from profile_sync.directory.entries import Entry
from profile_sync.directory.ldap.reader import escape_value

if TYPE_CHECKING:
    from profile_sync.directory.ldap.reader import LdapDirectoryReader

DNS_PER_SEARCH = 50
"""DNs per search filter (each one once per reference attribute): bounded filters, few round trips."""


def referrer_filter(attributes: Iterable[str], dns: Iterable[str]) -> str:
    """``(|(member=<dn>)(manager=<dn>)…)`` for every attribute and DN (values escaped for a filter)."""
    parts = [f"({a}={escape_value(dn)})" for dn in dns for a in sorted(set(attributes))]
    return parts[0] if len(parts) == 1 else f"(|{''.join(parts)})"


def read_referrers(reader: "LdapDirectoryReader", dns: list[str], reference_attributes: Iterable[str],
                   attributes: frozenset[str]) -> list[Entry]:
    """People and groups under the selected containers whose ``reference_attributes`` name one of ``dns``,
    read with ``attributes`` (ranged ``member`` completed on AD). Each object once."""
    wanted = sorted({a.lower() for a in reference_attributes})
    if not dns or not wanted:
        return []
    out: list[Entry] = []
    seen: set[str] = set()
    with reader.client() as client:
        server_type = reader.server_type(client)
        if server_type == "active_directory":  # AD groups keep their members in member
            wanted = [a for a in wanted if a != "uniquemember"]
        request = reader.request_attributes(attributes, server_type)
        unique = list(dict.fromkeys(dns))
        for i in range(0, len(unique), DNS_PER_SEARCH):
            query = f"(&{reader.object_filter}{referrer_filter(wanted, unique[i:i + DNS_PER_SEARCH])})"
            for base in reader.base_dns:
                for hit in client.search(base, query, request):
                    key = hit.dn.lower()
                    if key not in seen:
                        seen.add(key)
                        out.append(reader.to_entry(client, hit, len(out) + 1))
    return out
