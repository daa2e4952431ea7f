"""Run synchronizations on the embedded defaults in a temporary folder, and read the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from profile_sync.config.loader import load_settings
from profile_sync.profile_store.schema import property_specs
from profile_sync.profile_store.store import ProfileStore, make_engine
from profile_sync.run.context import RunContext
from profile_sync.run.local import run_sync

from tests.helpers.directory import USERS, FakeDirectory


class SyncHarness:
    """A configuration in ``tmp``: LDIF directory, SQLite profile store, local state store."""

    def __init__(self, tmp: Path, **overrides: Any) -> None:
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.ldif = self.tmp / "directory.ldif"
        self.config = self.tmp / "profile_sync.yaml"
        self.db = self.tmp / "profiles.db"
        self.runs = 0
        self.write_config(**overrides)

    def write_config(self, **overrides: Any) -> None:
        directory = {"name": "contoso", "type": "ldif", "path": str(self.ldif), "containers": [USERS]}
        directory.update(overrides.pop("directory", {}))
        doc = {
            "state_store": {"url": f"file://{self.tmp / 'state'}"},
            "profile_store": {"url": f"sqlite:///{self.db}"},
            "directories": [directory],
            **overrides,
        }
        self.config.write_text(yaml.safe_dump(doc))

    def context(self, mode: str = "full", dry_run: bool = False) -> RunContext:
        self.runs += 1
        return RunContext(run_id=f"test-run-{self.runs}", settings=load_settings(self.config),
                          project_root=self.tmp, requested_mode=mode, dry_run=dry_run)

    def sync(self, directory: FakeDirectory | None = None, mode: str = "full", dry_run: bool = False) -> dict:
        if directory is not None:
            directory.write(self.ldif)
        return run_sync(self.context(mode, dry_run))

    @property
    def store(self) -> ProfileStore:
        settings = load_settings(self.config)
        return ProfileStore(make_engine(f"sqlite:///{self.db}"), property_specs(settings))

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

        with self.store.engine.begin() as conn:
            conn.execute(text(sql), params)
