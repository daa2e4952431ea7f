"""The sample directory: a deterministic, AD-shaped set of people and groups, and its LDIF.

Used by ``make run`` to build the sample directory, by the unit and property tests (generate,
mutate, re-render), and to seed the slapd and Samba AD test servers::

    from profile_sync.sample import generate, write_ldif

    directory = generate(people=2000, groups=100, seed=42)
    directory.person(directory.expectations.manager_cycle[0]).cn = "Renamed Person"
    write_ldif(directory, "sample.ldif", "active_directory")

``python -m profile_sync.sample --help`` does the same from the command line.
"""

from profile_sync.sample.generator import DOMAIN, generate
from profile_sync.sample.jpeg import make_jpeg
from profile_sync.sample.ldif_writer import LdifSummary, ldif_records, render_ldif, write_ldif
from profile_sync.sample.model import (
    ACCOUNTDISABLE,
    FLAVOURS,
    LAYOUTS,
    Container,
    DanglingRef,
    Expectations,
    Flavour,
    FlavourLayout,
    Group,
    Person,
    SampleDirectory,
    SampleDirectoryError,
    escape_rdn_value,
    object_dn,
    render_dns,
)

__all__ = [
    "ACCOUNTDISABLE",
    "DOMAIN",
    "FLAVOURS",
    "LAYOUTS",
    "Container",
    "DanglingRef",
    "Expectations",
    "Flavour",
    "FlavourLayout",
    "Group",
    "LdifSummary",
    "Person",
    "SampleDirectory",
    "SampleDirectoryError",
    "escape_rdn_value",
    "generate",
    "ldif_records",
    "make_jpeg",
    "object_dn",
    "render_dns",
    "render_ldif",
    "write_ldif",
]
