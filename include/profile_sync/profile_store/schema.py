"""Profile store tables, built from the built-in and custom properties.

Core tables (DESIGN §4): ``user_profiles`` (one row per person: ``profile_id``,
one column per single-valued property, ``state``, source anchors, timestamps),
``user_groups``, ``group_memberships``; plus ``profile_schema_changes``, where
every column added for a custom property is recorded, and
``profile_property_values``, one row per value of a multi-valued property
(``profile_id``, ``property``, ``position``, ``value`` as text) — the shape of
SharePoint's own profile database (``UserProfileValue`` with an order rank): it
is the same on SQLite and PostgreSQL, needs no schema change per property, and
"who has value X" stays a plain query.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeEngine

from profile_sync.config.properties import BUILTIN_PROPERTIES, PropertySpec
from profile_sync.config.settings import Settings

PROPERTY_VALUES = "profile_property_values"
"""The table of multi-valued property values (``md.tables[PROPERTY_VALUES]``)."""

BOOKKEEPING = ["state", "source_connection", "source_anchor", "source_dn", "created_at", "updated_at",
               "marked_for_deletion_at"]


def property_specs(settings: Settings) -> dict[str, PropertySpec]:
    """Every profile property: built-in ones, then custom ones from the configuration."""
    specs = dict(BUILTIN_PROPERTIES)
    for name, custom in settings.custom_properties.items():
        specs[name] = PropertySpec(custom.type, custom.max_length if custom.type == "string" else None,
                                   custom.multi_valued)
    return specs


def sql_type(spec: PropertySpec) -> TypeEngine:
    return {
        "string": lambda: String(spec.max_length or 256),
        "text": Text,
        "boolean": Boolean,
        "integer": BigInteger,
        "date": Date,
        "binary": LargeBinary,
    }[spec.type]()


def build_metadata(specs: dict[str, PropertySpec]) -> tuple[MetaData, Table, Table, Table, Table]:
    """The tables for ``specs`` (property name → spec)."""
    md = MetaData()
    profiles = Table(
        "user_profiles", md,
        Column("profile_id", String(36), primary_key=True),
        *[Column(name, sql_type(spec), nullable=True) for name, spec in specs.items() if not spec.multi_valued],
        Column("state", String(32), nullable=False, server_default="active"),
        Column("source_connection", String(64)),
        Column("source_anchor", String(256)),
        Column("source_dn", Text),
        Column("created_at", DateTime(timezone=True)),
        Column("updated_at", DateTime(timezone=True)),
        Column("marked_for_deletion_at", DateTime(timezone=True)),
    )
    # Account names are unique among active profiles (a marked profile may share one with its successor).
    Index("ux_user_profiles_active_account_name", profiles.c.account_name, unique=True,
          sqlite_where=text("state = 'active'"), postgresql_where=text("state = 'active'"))
    Index("ix_user_profiles_source", profiles.c.source_connection, profiles.c.source_anchor)
    groups = Table(
        "user_groups", md,
        Column("group_id", String(36), primary_key=True),
        Column("name", String(256)),
        Column("state", String(32), nullable=False, server_default="active"),
        Column("source_connection", String(64)),
        Column("source_anchor", String(256)),
        Column("source_dn", Text),
        Column("created_at", DateTime(timezone=True)),
        Column("updated_at", DateTime(timezone=True)),
        Column("marked_for_deletion_at", DateTime(timezone=True)),
    )
    memberships = Table(
        "group_memberships", md,
        Column("group_id", String(36), primary_key=True),
        Column("member_type", String(16), primary_key=True),
        Column("member_id", String(36), primary_key=True),
    )
    Index("ix_group_memberships_member", memberships.c.member_id)
    changes = Table(
        "profile_schema_changes", md,
        Column("change_id", Integer, primary_key=True, autoincrement=True),
        Column("applied_at", DateTime(timezone=True), nullable=False),
        Column("run_id", String(256)),
        Column("table_name", String(64), nullable=False),
        Column("column_name", String(64), nullable=False),
        Column("column_type", String(64), nullable=False),
        Column("statement", Text, nullable=False),
    )
    values = Table(
        PROPERTY_VALUES, md,
        Column("profile_id", String(36), primary_key=True),
        Column("property", String(64), primary_key=True),
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("value", Text, nullable=False),
    )
    Index("ix_profile_property_values_property", values.c.property, values.c.profile_id)
    return md, profiles, groups, memberships, changes
