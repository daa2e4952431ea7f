"""Run synchronizations on the embedded defaults in a temporary folder, and read the result.

The profile store is SQLite (the embedded default) unless a ``profile_store_url``
is given (PostgreSQL from ``tests/servers``); then the configuration names an
Airflow-style Connection ``profile_store_db`` (no secret in the YAML) that the
harness resolves, as the hook layer does in Airflow.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sqlalchemy import Engine

from profile_sync.config.loader import load_settings
from profile_sync.profile_store.schema import property_specs
from profile_sync.profile_store.store import ProfileStore, make_engine
from profile_sync.run.context import ConnectionInfo, RunContext
from profile_sync.run.local import run_sync
from profile_sync.state.errors import LeaseHeldError

from tests.helpers.directory import USERS, FakeDirectory


class SyncHarness:
    """A configuration in ``tmp``: LDIF directory, SQLite profile store, local state store."""

    def __init__(self, tmp: Path, profile_store_url: str | None = None,
                 connections: dict[str, str] | None = None, **overrides: Any) -> None:
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.ldif = self.tmp / "directory.ldif"
        self.config = self.tmp / "profile_sync.yaml"
        self.db = self.tmp / "profiles.db"
        self.url = profile_store_url or f"sqlite:///{self.db}"
        self.backend = self.url.split(":", 1)[0].split("+", 1)[0]
        self.connections = dict(connections or {})
        if profile_store_url:
            self.connections["profile_store_db"] = profile_store_url
        self.runs = 0
        self.resolve_filesystem = None
        """(url, conn_id) → fsspec filesystem for an object-store state store (the Airflow hook in production)."""
        self.write_config(**overrides)

    def write_config(self, **overrides: Any) -> None:
        directory = {"name": "contoso", "type": "ldif", "path": str(self.ldif), "containers": [USERS]}
        directory.update(overrides.pop("directory", {}))
        store = {"conn_id": "profile_store_db"} if "profile_store_db" in self.connections else {"url": self.url}
        doc = {
            "state_store": overrides.pop("state_store", {"url": f"file://{self.tmp / 'state'}"}),
            "profile_store": store,
            "directories": [directory],
            **overrides,
        }
        self.config.write_text(yaml.safe_dump(doc))

    def resolve_connection(self, conn_id: str) -> ConnectionInfo:
        return ConnectionInfo(conn_id=conn_id, uri=self.connections[conn_id])

    def context(self, mode: str = "full", dry_run: bool = False) -> RunContext:
        self.runs += 1
        return RunContext(run_id=f"test-run-{self.runs}", settings=load_settings(self.config),
                          project_root=self.tmp, requested_mode=mode, dry_run=dry_run,
                          resolve_connection=self.resolve_connection, resolve_filesystem=self.resolve_filesystem)

    def inspector(self) -> RunContext:
        """A context for reading the stores (the state store, the coordination tables); counts no run."""
        return RunContext(run_id="inspect", settings=load_settings(self.config), project_root=self.tmp,
                          resolve_connection=self.resolve_connection, resolve_filesystem=self.resolve_filesystem)

    def last_run(self) -> dict | None:
        """The run history document of the last run."""
        return self.inspector().history.get(f"manual/test-run-{self.runs}")

    def committed_manifest(self) -> dict:
        return self.inspector().store.committed_manifest()

    def sync(self, directory: FakeDirectory | None = None, mode: str = "full", dry_run: bool = False,
             wait: float = 30.0) -> dict:
        """One run; waits (up to ``wait`` s) while another run — a dead one, say — holds the lease."""
        if directory is not None:
            directory.write(self.ldif)
        ctx = self.context(mode, dry_run)
        deadline = time.monotonic() + wait
        while True:
            try:
                return run_sync(ctx)
            except LeaseHeldError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    @property
    def store(self) -> ProfileStore:
        settings = load_settings(self.config)
        return ProfileStore(self.engine, property_specs(settings))

    @functools.cached_property
    def engine(self) -> Engine:
        return make_engine(self.url)

    def profiles(self) -> pd.DataFrame:
        return self.store.read_all(timestamps=True).people.set_index("profile_id", drop=False)

    def profile(self, upn: str) -> pd.Series:
        people = self.profiles()
        match = people.loc[people["user_principal_name"].str.lower() == upn.lower()]
        assert len(match) == 1, f"expected one profile for {upn}, found {len(match)}"
        return match.iloc[0]

    def memberships(self) -> pd.DataFrame:
        return self.store.read_all().memberships

    def execute(self, sql: str, **params: Any) -> None:
        from sqlalchemy import text

        with self.engine.begin() as conn:
            conn.execute(text(sql), params)

    def close(self) -> None:
        """Release pooled connections (a PostgreSQL test database is dropped after the test)."""
        if "engine" in self.__dict__:
            self.engine.dispose()
