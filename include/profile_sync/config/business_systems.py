"""Typed configuration of business-system (BCS) connections (DESIGN §2 steps 9–12, §3).

A business system is an HR or ERP database (a table, a view or a query, read
through SQLAlchemy) or a file (CSV, Parquet) holding extra facts about people:
employee id, hire date, cost centre. Its rows are joined to the people of the
profile store on one profile property and flow one way into the properties
listed under ``mappings``. Nothing here does I/O; cross-checks against the
profile properties live in ``loader.py``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from profile_sync.config.names import check_connection_name
from profile_sync.config.urls import has_password

BusinessSystemType = Literal["sql", "file"]
"""``sql``: a table, view or query through SQLAlchemy; ``file``: a CSV or Parquet file."""

FileFormat = Literal["auto", "csv", "parquet"]
"""How a ``file`` source is read; ``auto`` goes by the file name (``.parquet``/``.pq``, else CSV)."""

NormalizeStep = Literal["strip", "lower", "domain_user", "upn_local_part", "claims", "strip_leading_zeros"]
"""Closed vocabulary of join-key normalisation steps, applied in order to both sides of the join.

- ``strip``: remove leading and trailing whitespace;
- ``lower``: lower case;
- ``domain_user``: ``DOMAIN\\user`` → ``user`` (everything up to the last backslash goes);
- ``upn_local_part``: ``user@contoso.com`` → ``user`` (everything from the last ``@`` goes);
- ``claims``: ``i:0#.f|membership|jane@contoso.com`` → ``jane@contoso.com`` (the claims prefix goes);
- ``strip_leading_zeros``: ``000123`` → ``123`` (numeric employee ids).
"""

_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BcsJoin(_Frozen):
    """How business-system rows find their person: one column against one profile property."""

    profile_property: str = "account_name"
    """Profile property on the people's side (built-in or custom, single-valued), e.g. ``user_name``,
    ``work_email`` or a custom ``employee_id`` a directory fills."""
    source_column: str | None = None
    """Column of the business system holding the join value (required; matched case-insensitively
    when no column has exactly this name)."""
    normalize: tuple[NormalizeStep, ...] = ("strip", "lower")
    """Normalisation steps applied, in order, to both sides before they are compared."""


class BcsMapping(_Frozen):
    """One flow: a business-system column → a profile property (one-way, never written back)."""

    column: str
    """Column of the business system (matched case-insensitively when no column has exactly this name)."""


class BcsGateLimits(_Frozen):
    """Limits of the ``validate_bcs`` gate; ``null`` switches a limit off."""

    max_clear_percent: float | None = Field(default=10.0, ge=0, le=100)
    """Most people who may lose every property of this connection in one run (their row disappeared),
    in % of the people holding a value of it."""
    min_count_for_percent_limits: int = Field(default=10, ge=0)
    """A percentage limit trips only when more than this many people are affected (small stores)."""


class BusinessSystem(_Frozen):
    """A business-system connection (FIM: a BCS management agent)."""

    name: str
    """Identifier (lower-case letters, digits, ``_``); names the connector space. Unique among all connections."""
    type: BusinessSystemType = "sql"
    """``sql`` (a table, view or query through SQLAlchemy) or ``file`` (CSV or Parquet)."""
    conn_id: str | None = None
    """``sql``: the Airflow Connection holding the database URL and its password."""
    url: str | None = None
    """``sql``: a SQLAlchemy URL without a password (e.g. a SQLite file); ``conn_id`` wins."""
    table: str | None = None
    """``sql``: a table or view, optionally schema-qualified (``hr.employees``)."""
    query: str | None = None
    """``sql``: a SELECT returning the join column and the mapped columns (instead of ``table``)."""
    path: str | None = None
    """``file``: the CSV or Parquet file, absolute or relative to the project root."""
    format: FileFormat = "auto"
    """``file``: ``csv``, ``parquet``, or ``auto`` (by the file name)."""
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    """``file``, CSV: the field delimiter."""
    encoding: str = "utf-8"
    """``file``, CSV: the text encoding."""
    join: BcsJoin = BcsJoin()
    """How rows are joined to people."""
    mappings: dict[str, BcsMapping] = Field(default_factory=dict)
    """``property: column`` or ``property: {column}``: the properties this connection owns. A property
    declared ``multi_valued`` in ``custom_properties`` collects the values of every row with the
    person's key (1:many); any other property takes the one row's value (1:1)."""
    gates: BcsGateLimits = BcsGateLimits()
    """Limits of the ``validate_bcs`` gate for this connection."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_connection_name(value)

    @field_validator("mappings", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        # ``property: column`` is shorthand for ``property: {column: column}``.
        if isinstance(value, dict):
            return {k: ({"column": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value and has_password(value):
            raise ValueError("the URL holds a password: put it in an Airflow Connection and use 'conn_id'")
        return value

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is not None and not _TABLE_RE.match(value):
            raise ValueError(f"{value!r} is not a table or view name ('name' or 'schema.name'); use 'query' "
                             "for anything else")
        return value

    @model_validator(mode="after")
    def _check_source(self) -> "BusinessSystem":
        where = f"business system {self.name!r}"
        if self.type == "sql":
            if not (self.conn_id or self.url):
                raise ValueError(f"{where}: a sql connection needs 'conn_id' (or a 'url' without password)")
            if bool(self.table) == bool(self.query):
                raise ValueError(f"{where}: a sql connection needs exactly one of 'table' and 'query'")
            if self.path:
                raise ValueError(f"{where}: 'path' is for file connections; a sql connection reads 'table' or "
                                 "'query'")
        else:
            if not self.path:
                raise ValueError(f"{where}: a file connection needs 'path' (a CSV or Parquet file)")
            extra = [k for k in ("conn_id", "url", "table", "query") if getattr(self, k)]
            if extra:
                raise ValueError(f"{where}: {', '.join(extra)} are for sql connections, not file ones")
        if not self.join.source_column:
            raise ValueError(f"{where}: 'join.source_column' names the column holding the join value")
        if not self.mappings:
            raise ValueError(f"{where}: 'mappings' must list at least one property")
        return self

    @property
    def columns(self) -> list[str]:
        """The source columns read: the join column first, then the mapped ones (each once)."""
        out = [self.join.source_column or ""]
        for m in self.mappings.values():
            if m.column not in out:
                out.append(m.column)
        return out
