"""Typed configuration of Profile Sync.

One YAML file (see ``loader.py``) is validated into these frozen models. Every
field has a default and an attribute docstring; the README's configuration
reference is written from them. Secrets never live here: a connection names an
Airflow Connection (``conn_id``) or an environment variable holding the secret.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from profile_sync.config.business_systems import BusinessSystem
from profile_sync.config.names import NAME_RE, check_connection_name
from profile_sync.config.urls import has_password, mask_url
from profile_sync.config.sites import SiteConnection

Transform = Literal[
    "copy",
    "lower",
    "account_name",
    "proxy_primary_smtp",
    "proxy_sip",
    "boolean",
    "reference",
    "first_value",
]
"""Closed vocabulary of attribute-flow transforms (see ``sync/transforms.py``)."""

Direction = Literal["import", "export", "both"]
"""``import``: directory → profile; ``export``: profile → directory (write-back); ``both``."""

WRITABLE_TRANSFORMS = ("copy", "first_value")
"""Transforms a write-back (``export``/``both``) mapping may use: the value goes back unchanged."""

PropertyType = Literal["string", "text", "boolean", "integer", "date", "binary"]
"""Column types a profile property can have."""

DirectoryType = Literal["ldif", "ldap"]
PresetName = Literal["active_directory", "inetorgperson"]
DisabledAccountPolicy = Literal["leave_scope", "freeze"]



class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PropertyMapping(_Frozen):
    """One attribute flow between a directory attribute and a profile property."""

    source: str
    """Directory attribute name (case-insensitive, as the directory spells it)."""
    transform: Transform = "copy"
    """How the value is turned into the property value."""
    direction: Direction = "import"
    """``import`` (directory wins), ``export`` (write-back only) or ``both``."""


class CustomProperty(_Frozen):
    """A profile property that is not one of the built-in columns."""

    type: PropertyType = "string"
    """Column type."""
    max_length: int | None = Field(default=256, ge=1, le=1_000_000)
    """Maximum length for ``string`` columns (ignored for other types)."""
    multi_valued: bool = False
    """Several values per person, kept in ``profile_property_values`` instead of a column; only a
    business system can feed it (1:many), and not as ``binary``."""

    @model_validator(mode="after")
    def _multi(self) -> "CustomProperty":
        if self.multi_valued and self.type == "binary":
            raise ValueError("a binary property cannot be multi_valued")
        return self


class JoinRule(_Frozen):
    """Join a person of this connection to an existing metaverse person when values match."""

    source: str
    """Attribute of this connection (case-insensitive), e.g. ``mail`` or ``employeeID``."""
    metaverse: str
    """Profile property of the metaverse person compared with it, e.g. ``work_email``."""
    transform: Transform = "copy"
    """Transform applied to ``source`` first (e.g. ``proxy_primary_smtp``); values compare trimmed, case-insensitively."""


class GateLimits(_Frozen):
    """Limits of the safety gate before every export (DESIGN §5); ``null`` switches a limit off.

    Set at the top level (``gates:``) for every directory connection, and per
    connection (``directories[].gates:``), where only the keys given override
    the top-level ones. Percentages are of the connection's active profiles
    (deletes, updates, blanking) or of its last good import (shrink); they are
    not checked while the profile store holds no active profile of that
    connection (the first run).
    """

    max_deletes: int | None = Field(default=500, ge=0)
    """Most profiles (and, separately, groups) one run may mark for deletion."""
    max_delete_percent: float | None = Field(default=5.0, ge=0, le=100)
    """Most profiles (and, separately, groups) one run may mark for deletion, in % of the active ones."""
    max_update_percent: float | None = Field(default=20.0, ge=0, le=100)
    """Most profiles one run may update (a mapped property changes), in % of the active ones."""
    max_blank_percent: float | None = Field(default=5.0, ge=0, le=100)
    """Most profiles in which one run may empty one property that had a value, in % of the active ones."""
    max_shrink_percent: float | None = Field(default=10.0, ge=0, le=100)
    """Most the people in scope may shrink against the last good import, in %."""
    min_reference_resolution_percent: float | None = Field(default=90.0, ge=0, le=100)
    """Least share of references (``manager``, group ``member``) that must resolve, in %."""
    max_invalid_email_percent: float | None = Field(default=1.0, ge=0, le=100)
    """Most people whose ``work_email`` is not a valid e-mail address, in % of those who have one."""
    min_count_for_percent_limits: int = Field(default=10, ge=0)
    """A percentage limit trips only when more than this many objects are affected (small directories)."""


class DirectoryGateLimits(GateLimits):
    """Per-connection gate limits: only the keys given override the top-level ``gates``."""


class DirectoryConnection(_Frozen):
    """A directory: an LDIF export or an LDAP server (Active Directory, OpenLDAP, ...)."""

    name: str
    """Identifier of the connection (lower case letters, digits, ``_``); names its connector space."""
    type: DirectoryType = "ldif"
    """``ldif`` (a file) or ``ldap`` (a server through an Airflow Connection)."""
    path: str | None = None
    """LDIF: the file, absolute or relative to the project root."""
    conn_id: str | None = None
    """LDAP: the Airflow Connection id (host, port, login = bind DN, password; extras)."""
    preset: PresetName = "active_directory"
    """Default mappings, object classes and anchor: ``active_directory`` or ``inetorgperson``."""
    containers: tuple[str, ...] = ()
    """Selected containers (base DNs). Only objects at or below one of them are in scope. Required, except
    for an ``ldap`` connection whose Airflow Connection lists them in its ``base_dns`` extra."""
    excluded_containers: tuple[str, ...] = ()
    """Containers below a selected one that are left out of scope."""
    filter: str | None = None
    """An RFC 4515 LDAP filter an object must match to be in scope (for LDIF it is evaluated by the engine)."""
    person_object_classes: tuple[str, ...] | None = None
    """Object classes of people; preset default (``user`` / ``inetOrgPerson``, ``person``)."""
    group_object_classes: tuple[str, ...] | None = None
    """Object classes of groups; preset default (``group`` / ``groupOfNames``, ``groupOfUniqueNames``)."""
    excluded_object_classes: tuple[str, ...] | None = None
    """Object classes never in scope even if they match a person class (preset: ``computer``)."""
    anchor: str | None = None
    """Anchor attribute (``objectGUID``, ``entryUUID``, any attribute, or ``dn``); preset default."""
    mappings: dict[str, PropertyMapping | None] = Field(default_factory=dict)
    """Overrides on top of the preset: ``property: {source, transform, direction}``; ``null`` removes one."""
    precedence: int | None = None
    """Lower wins when several connections feed one property; default: order in the file."""
    join: tuple[JoinRule, ...] = ()
    """Join rules, tried in order for people without a link: the first rule matching exactly one metaverse
    person (fed by a connection of higher precedence) joins them. Ambiguous matches are reported, not joined."""
    project: bool = True
    """Create a metaverse person (a profile) for in-scope people no rule joined; ``false``: join only."""


    gates: DirectoryGateLimits | None = None
    """Gate limits for this connection; keys given here override the top-level ``gates``."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_connection_name(value)

    @field_validator("mappings", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        # ``property: attribute`` is shorthand for ``property: {source: attribute}``.
        if isinstance(value, dict):
            return {k: ({"source": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _check_source(self) -> "DirectoryConnection":
        if self.type == "ldif" and not self.path:
            raise ValueError(f"directory {self.name!r}: an ldif connection needs 'path'")
        if self.type == "ldap" and not self.conn_id:
            raise ValueError(f"directory {self.name!r}: an ldap connection needs 'conn_id'")
        if not self.containers and self.type != "ldap":
            # An ldap connection may take its base DNs from the Connection's extras (base_dns).
            raise ValueError(f"directory {self.name!r}: 'containers' must list at least one base DN")
        for prop, mapping in self.mappings.items():
            if mapping is not None and mapping.direction != "import" and mapping.transform not in WRITABLE_TRANSFORMS:
                raise ValueError(
                    f"directory {self.name!r}: mapping {prop!r} is written back (direction {mapping.direction!r}) "
                    f"but transform {mapping.transform!r} cannot be reversed; use one of {', '.join(WRITABLE_TRANSFORMS)}")
        return self


STATE_STORE_SCHEMES = ("file", "s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "memory")
"""URL schemes of a state store: a folder, or an object store through fsspec."""


class StateStoreSettings(_Frozen):
    """Where connector spaces, the metaverse and the watermarks live (the Parquet objects)."""

    url: str = "file://.local/state"
    """``file://path`` (relative paths are relative to the project root), or an object store:
    ``s3://bucket/prefix``, ``gs://bucket/prefix``, ``abfs://container/prefix``."""
    conn_id: str | None = None
    """The Airflow Connection with the object store's credentials (and endpoint), e.g. an ``aws`` Connection."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in STATE_STORE_SCHEMES:
            raise ValueError(f"state store {mask_url(value)!r}: the URL must start with one of "
                             f"{', '.join(s + '://' for s in STATE_STORE_SCHEMES)}")
        if "@" in value.split("://", 1)[1].split("/", 1)[0]:
            raise ValueError("state store URL must not hold credentials; use state_store.conn_id")
        return value


class ProfileStoreSettings(_Frozen):
    """The SQL profile store."""

    url: str | None = "sqlite:///.local/profiles.db"
    """SQLAlchemy URL without a password (refused if it holds one; relative SQLite paths are relative to the
    project root). ``postgres://`` (Airflow's spelling) is accepted."""
    conn_id: str | None = None
    """Airflow Connection id; when set it wins over ``url`` (the password comes from the Connection)."""

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value and has_password(value):
            raise ValueError("the URL holds a password: put the URL in an Airflow Connection (for example "
                             "AIRFLOW_CONN_PROFILE_STORE_DB) and set profile_store.conn_id instead")
        return value


class DeletionSettings(_Frozen):
    """What happens to people who are deleted, leave scope or are disabled."""

    disabled_accounts: DisabledAccountPolicy = "leave_scope"
    """``leave_scope``: a disabled person's profile is marked for deletion; ``freeze``: kept, no longer updated."""
    retention_days: int | None = Field(default=30, ge=0)
    """Profiles marked for deletion longer than this are purged; ``null`` keeps them forever."""


class ScheduleSettings(_Frozen):
    """Schedules of the two DAGs (cron strings or Airflow presets; ``null`` = manual only)."""

    full: str | None = "@weekly"
    """Schedule of ``profile_sync_full``."""
    incremental: str | None = "*/15 * * * *"
    """Schedule of ``profile_sync_incremental``."""


TaskLayout = Literal["per_step", "fused"]


class TasksSettings(_Frozen):
    """How each DAG's run maps to Airflow tasks.

    ``per_step``: one task per step (the grid shows every step; a retry re-runs one step). ``fused``: five
    tasks — ``start_run``, ``import_and_synchronize`` (the imports, ``synchronize`` and the gate
    ``validate_export``), ``approve_export``, ``export_and_confirm`` (every later step and ``finish_run``),
    ``release_run`` (``run/plan.py``: ``FUSED``) — each fused task
    running its steps one after the other in one process, each step still with a fresh context from the
    state store: the same steps, results and run history, fewer task start-ups (see README: Speed). A retry
    of a fused task re-runs its steps from its first."""

    full: TaskLayout = "per_step"
    """Layout of ``profile_sync_full``."""
    incremental: TaskLayout = "per_step"
    """Layout of ``profile_sync_incremental``."""


class LeaseSettings(_Frozen):
    """The lease that keeps two synchronizations from interleaving."""

    ttl_seconds: int = Field(default=60, ge=1)
    """A running step renews the lease every ttl/4 seconds; a lease not renewed for this long belongs to a
    dead holder — unless Airflow says the holder's run is still running (it is between two tasks)."""
    wait_seconds: int = Field(default=3600, ge=0)
    """How long a run waits for the lease before failing."""
    poke_seconds: int = Field(default=15, ge=1)
    """How often a waiting run checks the lease."""


class ApprovalSettings(_Frozen):
    """An administrator's approval of a run whose blast-radius limits tripped (DESIGN §5, §6c).

    When every failed check of ``validate_export`` is a blast-radius limit, the run waits for a decision
    (Airflow human-in-the-loop, task ``approve_export``) instead of failing: approve → the export goes on
    and the approval is recorded; reject or time-out → nothing is written and the run ends failed.
    Structural checks never wait: they fail the run.
    """

    enabled: bool = True
    """Wait for a decision on a tripped blast-radius limit; ``false``: fail at once (re-trigger with an override)."""
    timeout_minutes: int | None = Field(default=1440, ge=1)
    """How long a run waits for the decision before it ends failed (and writes nothing); ``null``: no time-out."""


class Settings(_Frozen):
    """The whole configuration file."""

    directories: tuple[DirectoryConnection, ...]
    """Directory connections (at least one)."""
    state_store: StateStoreSettings = StateStoreSettings()
    profile_store: ProfileStoreSettings = ProfileStoreSettings()
    deletion: DeletionSettings = DeletionSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    lease: LeaseSettings = LeaseSettings()
    tasks: TasksSettings = TasksSettings()
    """Airflow tasks per step, or fused into five (``tasks.full``, ``tasks.incremental``)."""
    approval: ApprovalSettings = ApprovalSettings()
    """Approval of a tripped blast-radius gate by an administrator instead of a failed run."""
    account_name_format: str = "i:0#.f|membership|{value}"
    """Format of ``account_name``; ``{value}`` is the source value (the UPN), lower-cased."""
    custom_properties: dict[str, CustomProperty] = Field(default_factory=dict)
    """Profile properties beyond the built-in ones, added to the store by a recorded schema change."""
    gates: GateLimits = GateLimits()
    """Limits of the safety gate before every export; per-connection overrides in ``directories[].gates``."""
    business_systems: tuple[BusinessSystem, ...] = ()
    """Business-system connections (HR, ERP): steps 9–12 run for each; none by default (eight steps)."""
    sites: tuple[SiteConnection, ...] = ()
    """Sites (user information lists in SQL databases) that ``profile_sync_sites`` pushes changed profiles to;
    none by default."""
    pool: str = "profile_sync"
    """One-slot Airflow pool the steps run in."""
    precedence: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Per-property precedence overriding the connections' order: ``property: [connection, ...]`` (first wins)."""

    @field_validator("directories")
    @classmethod
    def _unique(cls, value: tuple[DirectoryConnection, ...]) -> tuple[DirectoryConnection, ...]:
        if not value:
            raise ValueError("at least one directory connection is required")
        names = [d.name for d in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"directory names must be unique; repeated: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _unique_connections(self) -> "Settings":
        names = [d.name for d in self.directories] + [b.name for b in self.business_systems]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if self.business_systems and dupes:
            raise ValueError(f"connection names must be unique across directories and business_systems; "
                             f"repeated: {', '.join(dupes)}")
        return self

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, value: tuple[SiteConnection, ...], info: ValidationInfo) -> tuple[SiteConnection, ...]:
        names = [c.name for key in ("directories", "business_systems") for c in info.data.get(key) or ()]
        sites = [s.name for s in value]
        dupes = sorted({n for n in sites if sites.count(n) > 1 or n in names})
        if dupes:
            raise ValueError(f"site names must be unique and differ from directory and business-system names; "
                             f"repeated: {', '.join(dupes)}")
        return value

    def site(self, name: str) -> SiteConnection:
        """The site called ``name``."""
        for s in self.sites:
            if s.name == name:
                return s
        from profile_sync.errors import ValueErrorWithKnownValues

        raise ValueErrorWithKnownValues("site", name, [s.name for s in self.sites])

    def business_system(self, name: str) -> BusinessSystem:
        """The business-system connection called ``name``."""
        for b in self.business_systems:
            if b.name == name:
                return b
        from profile_sync.errors import ValueErrorWithKnownValues

        raise ValueErrorWithKnownValues("business-system connection", name, [b.name for b in self.business_systems])

    @field_validator("account_name_format")
    @classmethod
    def _format(cls, value: str) -> str:
        if "{value}" not in value:
            raise ValueError(f"{value!r} must contain '{{value}}'")
        return value

    @field_validator("custom_properties")
    @classmethod
    def _custom_names(cls, value: dict[str, CustomProperty]) -> dict[str, CustomProperty]:
        bad = [k for k in value if not NAME_RE.match(k)]
        if bad:
            raise ValueError(f"invalid property names {bad}: use lower-case letters, digits and '_'")
        return value

    @model_validator(mode="after")
    def _check_precedence(self) -> "Settings":
        names = {d.name for d in self.directories}
        for prop, order in self.precedence.items():
            unknown = [n for n in order if n not in names]
            if unknown:
                raise ValueError(f"precedence.{prop}: unknown connections {unknown}; known: {sorted(names)}")
        return self


    def gate_limits(self, name: str) -> GateLimits:
        """The gate limits of directory connection ``name``: top-level ``gates`` with its overrides."""
        own = self.directory(name).gates
        if own is None:
            return self.gates
        return self.gates.model_copy(update={k: getattr(own, k) for k in own.model_fields_set})

    def directory(self, name: str) -> DirectoryConnection:
        """The directory connection called ``name``."""
        for d in self.directories:
            if d.name == name:
                return d
        from profile_sync.errors import ValueErrorWithKnownValues

        raise ValueErrorWithKnownValues("directory connection", name, [d.name for d in self.directories])
