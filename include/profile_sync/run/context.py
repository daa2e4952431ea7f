"""The run context: what every step needs to know about the run it belongs to.

Built by the DAG layer from the Airflow context (run id, params) and the
resolved connections — afresh for every task, as every task is a fresh process;
built directly by tests and scripts. It holds no state of its own: the run's
working state is loaded from the state store when a step first asks for it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

from profile_sync.config.loader import PROJECT_ROOT, load_settings
from profile_sync.config.settings import Settings
from profile_sync.errors import TerminalError
from profile_sync.state.coordination import Coordination
from profile_sync.state.history import RunHistory
from profile_sync.state.lease import Lease, RunActive
from profile_sync.state.location import FilesystemFactory, Location, split_url
from profile_sync.state.store import RunState, StateStore

if TYPE_CHECKING:
    from sqlalchemy import Engine

Mode = Literal["full", "incremental"]

DATE_TEMPLATE = re.compile(r"\{\{\s*(ds|ds_nodash)\s*\}\}")
"""A dated source names its data by the run's date: ``exports/{{ ds }}.ldif`` (Airflow's template names)."""


@dataclass(frozen=True)
class ConnectionInfo:
    """An external system's address and credentials, from an Airflow Connection or the environment."""

    conn_id: str
    uri: str | None = field(default=None, repr=False)
    """May hold the password (``scheme://user:secret@host``): never in repr."""
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: dict = field(default_factory=dict)


ConnectionResolver = Callable[[str], ConnectionInfo]


def _no_resolver(conn_id: str) -> ConnectionInfo:
    raise TerminalError(
        f"connection {conn_id!r} is an Airflow Connection; run through Airflow or pass a connection resolver"
    )


def run_key(dag_id: str, run_id: str) -> str:
    """The identity of a run across the state store, the lease and the history: DAG and run id."""
    return f"{dag_id}/{run_id}"


@dataclass
class RunContext:
    """One synchronization run, as seen by one step."""

    run_id: str
    settings: Settings = field(default_factory=load_settings)
    project_root: Path = PROJECT_ROOT
    dag_id: str = "manual"
    requested_mode: Mode = "full"
    dry_run: bool = False
    triggered_by: str | None = None
    resolve_connection: ConnectionResolver = _no_resolver
    override_gates: bool = False
    """An administrator lets this run through failed blast-radius limits (recorded in the run history)."""
    override_reason: str | None = None
    """Why the gates are overridden (required with ``override_gates``)."""
    triggering_user: str | None = None
    """The Airflow user who triggered the run (``dag_run.triggering_user_name``); None when scheduled."""
    resolve_filesystem: FilesystemFactory | None = None
    """(state-store URL, conn_id) → fsspec filesystem; the Airflow layer builds it from a Connection."""
    is_run_active: RunActive | None = None
    """Whether another run (by run key) is still running — Airflow knows; None: only the lease's expiry tells."""
    part: str = "run"
    """The part of the run's working state this step writes (its name, and connection when mapped)."""
    run_type: str | None = None
    """How Airflow started the run: ``manual``, ``scheduled``, ``backfill``, ``asset_triggered`` (None: a script)."""
    logical_date: datetime | None = None
    """The run's logical date (None for a manual run without one)."""
    data_interval_end: datetime | None = None
    """The end of the run's data interval (None without one)."""

    @property
    def requested_by(self) -> str:
        """Who asked for this run: the triggering user, else how it was triggered."""
        return self.triggering_user or self.triggered_by or "unknown"

    @property
    def run_key(self) -> str:
        return run_key(self.dag_id, self.run_id)

    @property
    def ds(self) -> str:
        """The run's date (``YYYY-MM-DD``): its logical date, else the end of its data interval, else today (UTC)."""
        when = self.logical_date or self.data_interval_end or datetime.now(timezone.utc)
        return when.date().isoformat()

    def render(self, text: str) -> str:
        """``text`` with ``{{ ds }}`` and ``{{ ds_nodash }}`` replaced by the run's date (dated sources)."""
        return DATE_TEMPLATE.sub(lambda m: self.ds if m.group(1) == "ds" else self.ds.replace("-", ""), text)

    def fresh(self, part: str = "run") -> "RunContext":
        """The same run as a new task sees it: nothing cached, everything re-read from the stores."""
        return dataclasses.replace(self, part=part)

    # -- where the state lives ---------------------------------------------------------
    def state_store_name(self) -> str:
        """The state store's identity (its URL, absolute; never a secret)."""
        scheme, root = split_url(self.settings.state_store.url, self.project_root)
        return f"file://{root}" if scheme == "file" else self.settings.state_store.url.rstrip("/")

    @cached_property
    def coordination_engine(self) -> "Engine":
        from profile_sync.profile_store.engine import make_engine

        return make_engine(self.profile_store_url())

    @cached_property
    def coordination(self) -> Coordination:
        return Coordination(self.coordination_engine, self.state_store_name())

    @cached_property
    def store(self) -> StateStore:
        s = self.settings.state_store
        location = Location.from_url(s.url, self.project_root, s.conn_id, self.resolve_filesystem)
        return StateStore(location, self.coordination)

    @cached_property
    def history(self) -> RunHistory:
        return RunHistory(self.coordination)

    @cached_property
    def lease(self) -> Lease:
        return Lease(self.coordination, self.settings.lease.ttl_seconds, self.is_run_active)

    @cached_property
    def state(self) -> RunState:
        return self.store.open_run(self.run_key, self.part, owner=self.run_key)

    def profile_store_url(self) -> str:
        """The SQLAlchemy URL of the profile store (relative SQLite paths against the project root)."""
        ps = self.settings.profile_store
        if ps.conn_id:
            info = self.resolve_connection(ps.conn_id)
            if not info.uri:
                raise TerminalError(f"connection {ps.conn_id!r} has no URI for the profile store")
            return info.uri
        url = ps.url or ""
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            path = self.project_root / url[len(prefix):]
            path.parent.mkdir(parents=True, exist_ok=True)
            return prefix + str(path)
        return url

    def resolve_path(self, path: str) -> Path:
        """A configured path (relative to the project root), its ``{{ ds }}`` rendered with the run's date."""
        p = Path(self.render(path))
        return p if p.is_absolute() else self.project_root / p
