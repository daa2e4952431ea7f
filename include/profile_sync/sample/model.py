"""The neutral, editable in-memory model of a sample directory.

A :class:`SampleDirectory` holds :class:`Person` and :class:`Group` objects as plain mutable
dataclasses. Objects refer to each other by ``key`` (``"p000123"``, ``"g0042"``), never by DN:
a DN is derived at render time from the object's ``container`` (an OU path, outermost first) and
its RDN value ``cn``, under the layout of a :data:`Flavour`. So a rename edits ``cn``, a move
edits ``container``, and every reference follows.

Tests mutate these objects directly (``person.cn = "New Name"``, ``person.container = (...)``,
``person.disable()``, ``group.member_keys.append(key)``) or through the few helpers that keep
references consistent (:meth:`SampleDirectory.delete_person`, :meth:`SampleDirectory.delete_group`).
The query methods (:meth:`SampleDirectory.disabled_keys`, :meth:`SampleDirectory.manager_cycles`,
...) read the *current* state; :class:`Expectations` records what the generator planted.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "ACCOUNTDISABLE",
    "FLAVOURS",
    "LAYOUTS",
    "Container",
    "DanglingRef",
    "Expectations",
    "Flavour",
    "FlavourLayout",
    "Group",
    "Person",
    "SampleDirectory",
    "SampleDirectoryError",
    "container_dn",
    "escape_rdn_value",
    "object_dn",
    "render_dns",
]

Container = tuple[str, ...]
"""An OU path relative to the flavour's base, outermost first: ``("Sales", "Users")`` is
``OU=Users,OU=Sales`` under the base. Names are raw (unescaped) values."""

Flavour = Literal["active_directory", "inetorgperson"]
"""How a directory is rendered: Active Directory attributes, or inetOrgPerson for OpenLDAP."""

FLAVOURS: Final[tuple[Flavour, ...]] = ("active_directory", "inetorgperson")

ACCOUNTDISABLE: Final = 0x2
"""The ``userAccountControl`` bit that marks a disabled account (tested as a bit)."""

ObjectKind = Literal["person", "group"]


class SampleDirectoryError(ValueError):
    """The model cannot be rendered: an unknown reference, a duplicate key or DN, a bad GUID.

    ``problems`` lists every problem found, each naming the object key and the bad value.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = "; ".join(self.problems[:10])
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        super().__init__(f"sample directory is inconsistent: {shown}{more}")


@dataclass(frozen=True, slots=True)
class FlavourLayout:
    """Where objects of one flavour live and how their DNs are spelled."""

    suffix: str
    """The naming context, e.g. ``DC=contoso,DC=com``."""
    person_path: Container = ()
    """OU path under the suffix that person containers hang from (``("people",)``)."""
    group_path: Container = ()
    """OU path under the suffix that group containers hang from."""
    rdn_type: str = "CN"
    """Attribute type of an object's RDN (``CN`` / ``cn``)."""
    ou_type: str = "OU"
    """Attribute type of a container's RDN (``OU`` / ``ou``)."""

    def full_path(self, kind: ObjectKind, container: Container) -> Container:
        """The OU path of ``container`` under the suffix, for an object of ``kind``."""
        return (self.group_path if kind == "group" else self.person_path) + container

    def container_dn(self, path: Container) -> str:
        """The DN of an OU path under the suffix (the suffix itself for ``()``)."""
        return container_dn(path, self.suffix, self.ou_type)


LAYOUTS: Final[Mapping[Flavour, FlavourLayout]] = MappingProxyType(
    {
        "active_directory": FlavourLayout(suffix="DC=contoso,DC=com", rdn_type="CN", ou_type="OU"),
        "inetorgperson": FlavourLayout(
            suffix="dc=example,dc=org", person_path=("people",), rdn_type="cn", ou_type="ou"
        ),
    }
)
"""The DN layout per flavour. Containers keep their structure in both; inetOrgPerson people
hang under ``ou=people``, groups directly under the suffix."""


def check_flavour(flavour: str) -> Flavour:
    """Return ``flavour`` if it is known, else raise ``ValueError`` listing the known values."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; known flavours: {', '.join(FLAVOURS)}")
    return flavour


_ESCAPE_ANYWHERE: Final = {
    '"': '\\"', "+": "\\+", ",": "\\,", ";": "\\;", "<": "\\<", ">": "\\>", "\\": "\\\\",
    **{chr(c): f"\\{c:02X}" for c in (*range(0x20), 0x7F)},
}
_NEEDS_ESCAPE: Final = re.compile(r'["+,;<>\\\x00-\x1f\x7f]|^[ #]| $')


def escape_rdn_value(value: str) -> str:
    """Escape an attribute value for use in a DN string (RFC 4514 section 2.4).

    Escapes ``" + , ; < > \\`` everywhere, control characters as hex pairs (``\\00``, ``\\0A``;
    libldap would take an unescaped newline or tab for insignificant space), a leading ``#``
    or space and a trailing space. Other characters stay as they are (the LDIF writer
    base64-encodes a non-ASCII DN).
    """
    if not _NEEDS_ESCAPE.search(value):
        return value
    out = "".join(_ESCAPE_ANYWHERE.get(ch, ch) for ch in value)
    if value[0] in " #":
        out = "\\" + out
    if len(value) > 1 and value[-1] == " ":
        out = out[:-1] + "\\ "
    return out


def container_dn(container: Container, base: str, ou_type: str = "OU") -> str:
    """The DN of ``container`` under ``base``.

    ``("Sales", "Users")`` → ``OU=Users,OU=Sales,<base>``; ``()`` → ``base``.
    """
    parts = [f"{ou_type}={escape_rdn_value(name)}" for name in reversed(container)]
    parts.append(base)
    return ",".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class DanglingRef:
    """A reference to an object that does not exist: rendered as a DN of nobody."""

    container: Container
    """The container the missing object would live in."""
    cn: str
    """The RDN value of the missing object."""
    kind: ObjectKind = "person"
    """Which base the DN is rendered under (people and groups differ in inetOrgPerson)."""


@dataclass(slots=True)
class Person:
    """One user account. Attribute names are neutral; the writer maps them per flavour.

    ``None`` (or an empty list) means the attribute is absent from the entry.
    """

    key: str
    """Stable identity in the model, e.g. ``"p000123"``; never rendered."""
    container: Container
    """OU path, outermost first (see :data:`Container`)."""
    cn: str
    """RDN value (raw, unescaped); also the ``cn`` attribute."""
    guid: bytes
    """16 bytes: ``objectGUID`` in Active Directory (inetOrgPerson servers assign entryUUID)."""
    sam_account_name: str
    """``sAMAccountName`` (AD) / ``uid`` (inetOrgPerson)."""
    user_principal_name: str | None = None
    """``userPrincipalName``; sometimes in mixed case, to test lower-casing."""
    given_name: str | None = None
    """``givenName``."""
    surname: str | None = None
    """``sn``."""
    display_name: str | None = None
    """``displayName``."""
    mail: str | None = None
    """``mail``."""
    proxy_addresses: list[str] = field(default_factory=list)
    """``proxyAddresses``: one ``SMTP:`` primary, ``smtp:`` aliases, ``SIP:``; possibly none."""
    telephone_number: str | None = None
    """``telephoneNumber``."""
    office: str | None = None
    """``physicalDeliveryOfficeName`` (AD) / ``roomNumber`` (inetOrgPerson)."""
    title: str | None = None
    """``title``."""
    department: str | None = None
    """``department`` (AD) / ``departmentNumber`` (inetOrgPerson)."""
    web_page: str | None = None
    """``wWWHomePage`` (AD) / ``labeledURI`` (inetOrgPerson)."""
    preferred_language: str | None = None
    """``preferredLanguage``."""
    hide_from_address_lists: bool | None = None
    """``msExchHideFromAddressList`` (AD only); ``None`` leaves it out."""
    employee_id: str | None = None
    """``employeeID`` (AD) / ``employeeNumber`` (inetOrgPerson)."""
    user_account_control: int = 512
    """``userAccountControl`` (AD only); bit 0x2 set means disabled."""
    photo: bytes | None = None
    """A JPEG: ``thumbnailPhoto`` (AD) / ``jpegPhoto`` (inetOrgPerson)."""
    manager_key: str | None = None
    """Key of this person's manager, rendered as the manager's DN."""
    dangling_manager: DanglingRef | None = None
    """A manager DN that names nobody; mutually exclusive with ``manager_key``."""

    @property
    def disabled(self) -> bool:
        """Whether ``userAccountControl`` has the ACCOUNTDISABLE bit (0x2) set."""
        return bool(self.user_account_control & ACCOUNTDISABLE)

    def disable(self) -> None:
        """Set the ACCOUNTDISABLE bit, keeping the other flags (512 → 514, 66048 → 66050)."""
        self.user_account_control |= ACCOUNTDISABLE

    def enable(self) -> None:
        """Clear the ACCOUNTDISABLE bit, keeping the other flags."""
        self.user_account_control &= ~ACCOUNTDISABLE


@dataclass(slots=True)
class Group:
    """One group; members are people or groups, referred to by key."""

    key: str
    """Stable identity in the model, e.g. ``"g0042"``; never rendered."""
    container: Container
    """OU path, outermost first (see :data:`Container`)."""
    cn: str
    """RDN value (raw, unescaped); also the ``cn`` attribute."""
    guid: bytes
    """16 bytes: ``objectGUID`` in Active Directory."""
    sam_account_name: str
    """``sAMAccountName`` (AD only)."""
    description: str | None = None
    """``description``."""
    group_type: int = -2147483646
    """``groupType`` (AD only); the default is a global security group."""
    member_keys: list[str] = field(default_factory=list)
    """Keys of member people and groups, in rendering order."""
    dangling_members: list[DanglingRef] = field(default_factory=list)
    """Member DNs that name nobody, rendered after the resolved members."""


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the generator planted, by key, so tests can find each case without searching.

    This describes the directory *as generated*; after mutating it, ask the query methods of
    :class:`SampleDirectory` for the current state instead. Empty for a hand-built directory.
    """

    ceo_key: str | None = None
    """The root of the manager hierarchy (has no manager)."""
    service_account_keys: tuple[str, ...] = ()
    """Accounts in the out-of-scope ``OU=Service Accounts`` container."""
    disabled_keys: tuple[str, ...] = ()
    """People with bit 0x2 in ``userAccountControl``."""
    disabled_values: tuple[int, ...] = ()
    """The distinct disabled ``userAccountControl`` values used, ascending."""
    disabled_manager_key: str | None = None
    """A disabled person who still has reports (their ``manager`` points at a disabled account)."""
    dangling_manager_keys: tuple[str, ...] = ()
    """People whose ``manager`` is the DN of nobody."""
    out_of_scope_manager_key: str | None = None
    """A person whose manager is a service account (exists, but outside the user OUs)."""
    manager_cycle: tuple[str, ...] = ()
    """``(a, b)``: a's manager is b and b's manager is a."""
    forward_manager_keys: tuple[str, ...] = ()
    """People written before their manager in the file (the manager reference points forward)."""
    group_cycle: tuple[str, ...] = ()
    """``(g1, g2)``: g1 contains g2 and g2 contains g1."""
    nested_group_keys: tuple[str, ...] = ()
    """Groups that have at least one group among their members."""
    big_group_key: str | None = None
    """The group with the most members (over 1,500 when people >= 2000)."""
    dangling_member_group_key: str | None = None
    """A group with a member DN that names nobody."""
    empty_group_key: str | None = None
    """A group without members."""
    special_cn_keys: Mapping[str, str] = field(default_factory=dict)
    """Planted names by case: ``comma``, ``plus``, ``leading_hash``, ``trailing_space``,
    ``quote_semicolon``, ``backslash``, ``angle_brackets`` (DN escaping) and ``jose``, ``zoe``,
    ``oyvind``, ``agaoglu``, ``li_lei``, ``aero`` (non-ASCII) → person key."""
    special_container_keys: tuple[str, ...] = ()
    """People whose container name needs DN escaping (``OU=R&D\\, Zürich``)."""
    non_ascii_keys: tuple[str, ...] = ()
    """People whose ``cn`` contains non-ASCII characters."""
    photo_keys: tuple[str, ...] = ()
    """People with a photo."""
    mixed_case_upn_keys: tuple[str, ...] = ()
    """People whose ``userPrincipalName`` is not all lower case."""
    no_proxy_address_keys: tuple[str, ...] = ()
    """People without any ``proxyAddresses``."""
    no_sip_keys: tuple[str, ...] = ()
    """People with ``SMTP:`` addresses but no ``SIP:`` value."""
    hidden_keys: tuple[str, ...] = ()
    """People with ``msExchHideFromAddressList: TRUE``."""
    not_hidden_keys: tuple[str, ...] = ()
    """People with an explicit ``msExchHideFromAddressList: FALSE``."""


@dataclass(slots=True)
class SampleDirectory:
    """A sample directory: people and groups in file order, plus what was planted."""

    people: list[Person] = field(default_factory=list)
    """People, in the order the writer renders them."""
    groups: list[Group] = field(default_factory=list)
    """Groups, in the order the writer renders them (after all people)."""
    expectations: Expectations = field(default_factory=Expectations)
    """Planted cases, as generated (see :class:`Expectations`)."""
    comment: str = "Profile Sync sample directory"
    """Written as a comment at the top of the LDIF (ASCII)."""

    # ----------------------------------------------------------------- lookups
    def person(self, key: str) -> Person:
        """The person with ``key``; ``KeyError`` if there is none."""
        for person in self.people:
            if person.key == key:
                return person
        raise KeyError(f"no person with key {key!r}")

    def group(self, key: str) -> Group:
        """The group with ``key``; ``KeyError`` if there is none."""
        for group in self.groups:
            if group.key == key:
                return group
        raise KeyError(f"no group with key {key!r}")

    def people_by_key(self) -> dict[str, Person]:
        """A fresh index of people by key (rebuild it after mutations)."""
        return {p.key: p for p in self.people}

    def groups_by_key(self) -> dict[str, Group]:
        """A fresh index of groups by key (rebuild it after mutations)."""
        return {g.key: g for g in self.groups}

    def copy(self) -> SampleDirectory:
        """A deep copy, so a test can mutate it and keep the original."""
        return copy.deepcopy(self)

    # ---------------------------------------------------------------- queries
    def disabled_keys(self) -> list[str]:
        """Keys of people whose ``userAccountControl`` has bit 0x2, in list order."""
        return [p.key for p in self.people if p.disabled]

    def dangling_manager_keys(self) -> list[str]:
        """Keys of people whose manager DN names nobody, in list order."""
        return [p.key for p in self.people if p.dangling_manager is not None]

    def dangling_member_group_keys(self) -> list[str]:
        """Keys of groups with at least one member DN that names nobody."""
        return [g.key for g in self.groups if g.dangling_members]

    def manager_cycles(self) -> list[tuple[str, ...]]:
        """Every cycle in the manager graph (self-management included), each starting at its
        smallest key, sorted."""
        manager = {p.key: p.manager_key for p in self.people if p.manager_key is not None}
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        cycles: list[tuple[str, ...]] = []
        for start in manager:
            path: list[str] = []
            node: str | None = start
            while node is not None and node in manager and state.get(node) is None:
                state[node] = 1
                path.append(node)
                node = manager[node]
            if node is not None and state.get(node) == 1:
                cycle = path[path.index(node):]
                pivot = cycle.index(min(cycle))
                cycles.append(tuple(cycle[pivot:] + cycle[:pivot]))
            for visited in path:
                state[visited] = 2
        return sorted(cycles)

    def group_cycles(self) -> list[tuple[str, ...]]:
        """Groups that reach themselves through nesting: each strongly connected component of
        the group-in-group graph with a cycle, as sorted keys, sorted."""
        group_keys = {g.key for g in self.groups}
        edges = {g.key: [m for m in g.member_keys if m in group_keys] for g in self.groups}
        return sorted(tuple(sorted(c)) for c in _cyclic_components(edges))

    def nested_group_keys(self) -> list[str]:
        """Keys of groups with at least one group member, in list order."""
        group_keys = {g.key for g in self.groups}
        return [g.key for g in self.groups if any(m in group_keys for m in g.member_keys)]

    def biggest_group(self) -> Group | None:
        """The group with the most members (resolved plus dangling); ``None`` without groups."""
        if not self.groups:
            return None
        return max(self.groups, key=lambda g: len(g.member_keys) + len(g.dangling_members))

    # -------------------------------------------------------------- mutations
    def delete_person(
        self, key: str, references: Literal["remove", "dangle"] = "remove"
    ) -> Person:
        """Remove a person and deal with references to them; return the removed person.

        ``remove`` does what Active Directory does with linked attributes: memberships go and
        reports lose their manager. ``dangle`` does what a directory without referential
        integrity does: the references stay, now naming nobody (:class:`DanglingRef`).
        """
        person = self.person(key)
        self.people.remove(person)
        ghost = DanglingRef(person.container, person.cn, "person")
        for other in self.people:
            if other.manager_key == key:
                other.manager_key = None
                if references == "dangle":
                    other.dangling_manager = ghost
        self._drop_member(key, ghost, references)
        return person

    def delete_group(
        self, key: str, references: Literal["remove", "dangle"] = "remove"
    ) -> Group:
        """Remove a group and its memberships in other groups (see :meth:`delete_person`)."""
        group = self.group(key)
        self.groups.remove(group)
        self._drop_member(key, DanglingRef(group.container, group.cn, "group"), references)
        return group

    def _drop_member(
        self, key: str, ghost: DanglingRef, references: Literal["remove", "dangle"]
    ) -> None:
        for group in self.groups:
            if key in group.member_keys:
                group.member_keys = [m for m in group.member_keys if m != key]
                if references == "dangle":
                    group.dangling_members.append(ghost)

    # ------------------------------------------------------------- validation
    def validate(self, flavour: Flavour = "active_directory") -> None:
        """Raise :class:`SampleDirectoryError` unless the directory renders to a consistent
        LDIF in ``flavour``: unique keys and DNs, known references, 16-byte GUIDs."""
        render_dns(self, flavour)


def object_dn(obj: Person | Group | DanglingRef, flavour: Flavour) -> str:
    """The DN of a person, group or dangling reference in ``flavour``."""
    layout = LAYOUTS[check_flavour(flavour)]
    kind: ObjectKind
    if isinstance(obj, DanglingRef):
        kind = obj.kind
    else:
        kind = "group" if isinstance(obj, Group) else "person"
    parent = layout.container_dn(layout.full_path(kind, obj.container))
    return f"{layout.rdn_type}={escape_rdn_value(obj.cn)},{parent}"


def render_dns(directory: SampleDirectory, flavour: Flavour) -> dict[str, str]:
    """Map every key to its DN in ``flavour``, checking the directory on the way.

    Raises :class:`SampleDirectoryError` listing duplicate keys, duplicate DNs (compared
    case-insensitively), unknown manager or member keys, a person with both a manager and a
    dangling manager, and GUIDs that are not 16 bytes.
    """
    layout = LAYOUTS[check_flavour(flavour)]
    problems: list[str] = []
    dns: dict[str, str] = {}
    seen_dns: dict[str, str] = {}
    parents: dict[tuple[str, Container], str] = {}

    def add(key: str, kind: ObjectKind, container: Container, cn: str) -> None:
        parent = parents.get((kind, container))
        if parent is None:
            parent = parents[(kind, container)] = layout.container_dn(
                layout.full_path(kind, container))
        dn = f"{layout.rdn_type}={escape_rdn_value(cn)},{parent}"
        if key in dns:
            problems.append(f"duplicate key {key!r}")
            return
        folded = dn.casefold()
        if folded in seen_dns:
            problems.append(f"{key}: DN {dn!r} is also the DN of {seen_dns[folded]}")
        seen_dns[folded] = key
        dns[key] = dn

    for person in directory.people:
        add(person.key, "person", person.container, person.cn)
    for group in directory.groups:
        add(group.key, "group", group.container, group.cn)
    person_keys = {p.key for p in directory.people}
    for person in directory.people:
        if len(person.guid) != 16:
            problems.append(f"{person.key}: guid has {len(person.guid)} bytes, not 16")
        if person.manager_key is not None:
            if person.manager_key not in person_keys:
                problems.append(f"{person.key}: manager_key {person.manager_key!r} is no person")
            if person.dangling_manager is not None:
                problems.append(f"{person.key}: has both manager_key and dangling_manager")
        if not person.cn:
            problems.append(f"{person.key}: empty cn")
    for group in directory.groups:
        if len(group.guid) != 16:
            problems.append(f"{group.key}: guid has {len(group.guid)} bytes, not 16")
        unknown = [m for m in group.member_keys if m not in dns]
        if unknown:
            problems.append(f"{group.key}: unknown member keys {unknown[:5]!r}")
        if not group.cn:
            problems.append(f"{group.key}: empty cn")
    if problems:
        raise SampleDirectoryError(problems)
    return dns


def _cyclic_components(edges: Mapping[str, Iterable[str]]) -> Iterator[list[str]]:
    """Strongly connected components that contain a cycle (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    yield component
