"""Sites for tests: what a site does on its own (list the people who use it), and reading its tables."""

from __future__ import annotations

import json
from typing import Any, Iterable

from sqlalchemy import create_engine, insert, inspect, select

from profile_sync.sites.config import list_table, watermark_table


def claims(upn: str) -> str:
    """The account name of ``upn`` in the default format."""
    return f"i:0#.f|membership|{upn.lower()}"


def list_people(url: str, account_names: Iterable[str], table: str = "user_information_list") -> None:
    """The site learns about people (they used it): rows with only their account name, as the site adds them."""
    engine = create_engine(url)
    try:
        t = list_table(table)
        with engine.begin() as conn:
            if not inspect(conn).has_table(t.name, schema=t.schema):
                t.create(conn)
            names = list(account_names)
            if names:
                conn.execute(insert(t), [{"account_name": n} for n in names])
    finally:
        engine.dispose()


def site_rows(url: str, table: str = "user_information_list") -> dict[str, dict[str, Any]]:
    """Every row of the list, by account name."""
    engine = create_engine(url)
    try:
        t = list_table(table)
        with engine.connect() as conn:
            rows = conn.execute(select(t)).mappings().all()
        return {r["account_name"]: dict(r) for r in rows}
    finally:
        engine.dispose()


def watermark(url: str, site: str, table: str = "user_information_list") -> dict[str, Any] | None:
    """The site's watermark row (``watermark`` parsed), or None."""
    engine = create_engine(url)
    try:
        w = watermark_table(table)
        with engine.connect() as conn:
            if not inspect(conn).has_table(w.name, schema=w.schema):
                return None
            row = conn.execute(select(w).where(w.c.site == site)).mappings().first()
        if row is None:
            return None
        return {**dict(row), "watermark": json.loads(row["watermark"])}
    finally:
        engine.dispose()
