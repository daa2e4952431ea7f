"""Typed configuration of sites: the last link, profile store → sites (DESIGN §6d).

A site is a SQL database holding that site's *user information list*: a table
of the people known to the site (SharePoint's hidden User Information List).
``profile_sync_sites`` pushes changed profiles of the people already listed
there. Which properties go to sites is not configuration: it is the table
``SYNC_TO_SITES`` in ``profile_sync/sites/config.py``. Nothing here does I/O.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from profile_sync.config.names import check_connection_name

_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_PASSWORD_IN_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*:[^/@]+@")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SiteGateLimits(_Frozen):
    """The blast-radius gate of one site's push; ``null`` switches a limit off."""

    max_deletes: int | None = Field(default=500, ge=0)
    """Most listed people one push may flag ``deleted``."""
    max_delete_percent: float | None = Field(default=5.0, ge=0, le=100)
    """Most listed people one push may flag ``deleted``, in % of the site's people not flagged yet."""
    min_count_for_percent_limits: int = Field(default=10, ge=0)
    """The percentage trips only when more people than this would be flagged (small sites)."""


class SiteConnection(_Frozen):
    """A site: a SQL database holding its user information list."""

    name: str
    """Identifier (lower-case letters, digits, ``_``); names the mapped task and the site's watermark.
    Unique among all connections (directories, business systems, sites)."""
    conn_id: str | None = None
    """The Airflow Connection holding the database URL and its password; wins over ``url``."""
    url: str | None = None
    """A SQLAlchemy URL without a password (e.g. ``sqlite:///.local/sites/intranet.db``; relative SQLite
    paths are relative to the project root)."""
    table: str = "user_information_list"
    """The user information list: a table name, optionally schema-qualified (``sites.intranet_users``).
    Created with the documented shape the first time if it is missing."""
    gates: SiteGateLimits = SiteGateLimits()
    """Limits of this site's blast-radius gate."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_connection_name(value)

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value and _PASSWORD_IN_URL.match(value):
            raise ValueError("the URL holds a password: put it in an Airflow Connection and use 'conn_id'")
        return value

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if not _TABLE_RE.match(value):
            raise ValueError(f"{value!r} is not a table name ('name' or 'schema.name')")
        return value

    @model_validator(mode="after")
    def _check_source(self) -> "SiteConnection":
        if not (self.conn_id or self.url):
            raise ValueError(f"site {self.name!r}: needs 'conn_id' (an Airflow Connection) or a 'url' without "
                             "password")
        return self
