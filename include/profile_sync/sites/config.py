"""What goes to sites, and the shape of a site's tables.

``SYNC_TO_SITES`` is the one table that says which profile properties are pushed
to sites. It follows the "sync to sites" column of SharePoint Online's default
property table (the seed of DESIGN §6d): account name / user name / user
principal name, name, first and last name, work phone, work e-mail, SIP address,
office, title, job title, department, language preferences and manager go to
sites; the public site redirect (``wWWHomePage``) and hide-from-address-lists do
not. Every built-in property is classified here (a test keeps it so); custom
properties never go to sites.

A site's database holds two tables:

``<table>`` (default ``user_information_list``) — the site's list of the people
who use it, which the site (or another application) may own::

    account_name          varchar(400)  primary key   the key: the person's account name as the site knows it
    profile_id            varchar(36)   null          written by Profile Sync: the profile the row follows
    user_name … manager   varchar       null          the SYNCED properties, same lengths as the profile store
    deleted               boolean       not null      true: the person's profile is marked for deletion
    last_synced           timestamp tz  null          when Profile Sync last wrote the row; null: never

Rows are added by the site, never by Profile Sync (a site learns about a person
when the person first uses it); Profile Sync only updates rows. Other columns
are left alone. A missing ``profile_id``, ``deleted``, ``last_synced`` or
property column is added (nullable); a table without ``account_name`` is refused.

``profile_sync_site_watermark`` — Profile Sync's own bookkeeping: one row per
site, written in the same transaction as the push (see ``site_list.py``).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Text, false

from profile_sync.config.properties import BUILTIN_PROPERTIES
from profile_sync.profile_store.schema import sql_type

SYNC_TO_SITES: dict[str, bool] = {
    "account_name": True,
    "user_name": True,
    "user_principal_name": True,
    "preferred_name": True,  # "Name"
    "first_name": True,
    "last_name": True,
    "work_phone": True,
    "work_email": True,
    "sip_address": True,
    "office": True,
    "title": True,
    "job_title": True,
    "department": True,
    "public_site_redirect": False,  # wWWHomePage: profile only
    "language_preferences": True,
    "hide_from_address_lists": False,  # msExchHideFromAddressList: profile only
    "manager": True,
    "picture": False,  # not in the seed's list (sites show the profile's picture by URL, not a copy)
    "about_me": False,  # set by people in the profile store; not in the seed's list
    "skills": False,
}
"""Built-in property → whether it goes to sites (the seed's "sync to sites" column)."""

SYNCED: tuple[str, ...] = tuple(p for p, synced in SYNC_TO_SITES.items() if synced)
"""The properties pushed to sites, in column order. ``account_name`` is both a property and the key."""

KEY = "account_name"
BOOKKEEPING = ("profile_id", "deleted", "last_synced")
"""Columns of the list Profile Sync writes besides the properties."""

WATERMARK_TABLE = "profile_sync_site_watermark"

UPDATED_AT_OVERLAP_SECONDS = 60
"""An incremental push re-reads profiles whose ``updated_at`` is up to this much older than the site's
watermark: ``updated_at`` is set by the clock of the worker that exported, and workers' clocks may differ
a little. Re-read profiles that did not change cost a comparison, never a write."""

CHUNK = 5000
"""Most values in one ``IN (…)`` list."""


def split_table(name: str) -> tuple[str | None, str]:
    """``schema.table`` → (schema, table); ``table`` → (None, table)."""
    schema, _, table = name.rpartition(".")
    return (schema or None), table


def list_table(name: str, metadata: MetaData | None = None) -> Table:
    """The user information list ``name`` with the documented shape."""
    schema, table = split_table(name)
    props = [Column(p, sql_type(BUILTIN_PROPERTIES[p]), nullable=True) for p in SYNCED if p != KEY]
    return Table(
        table, metadata or MetaData(),
        Column(KEY, sql_type(BUILTIN_PROPERTIES[KEY]), primary_key=True),
        Column("profile_id", String(36), nullable=True),
        *props,
        Column("deleted", Boolean, nullable=False, server_default=false()),
        Column("last_synced", DateTime(timezone=True), nullable=True),
        schema=schema,
    )


def watermark_table(list_name: str, metadata: MetaData | None = None) -> Table:
    """Profile Sync's watermark table, in the list's schema."""
    schema, _ = split_table(list_name)
    return Table(
        WATERMARK_TABLE, metadata or MetaData(),
        Column("site", String(64), primary_key=True),
        Column("list_table", String(128), nullable=False),
        Column("watermark", Text, nullable=False),
        Column("pushed_at", DateTime(timezone=True), nullable=False),
        Column("run_id", String(256), nullable=True),
        Column("mode", String(16), nullable=False),
        schema=schema,
    )
