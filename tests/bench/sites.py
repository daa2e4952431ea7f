"""Benchmark of the push to sites: ``python -m tests.bench.sites [--sites 10] [--listed 10000]``.

A profile store (SQLite, the embedded default) of ``--people`` profiles; ``--sites``
sites, each listing ``--listed`` of them (a different random sample per site), on
SQLite files and — when the test server can start — PostgreSQL databases. Measured,
one site after the other in this process (Airflow runs them as parallel mapped
tasks, each in its own process):

- first push: every listed person is new to the site (all rows written);
- full push (on request): every listed row rewritten;
- incremental push after a 1 % change: ``--change`` % of the profiles changed by
  an export (new title, ``updated_at`` stamped, change log suspended — as steps 4
  and 11 do);
- incremental push with nothing changed.

Times are printed, never asserted (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "include"), str(ROOT)]

import pandas as pd  # noqa: E402
from sqlalchemy import bindparam, create_engine, insert, update  # noqa: E402

from profile_sync.config.properties import BUILTIN_PROPERTIES  # noqa: E402
from profile_sync.config.sites import SiteConnection  # noqa: E402
from profile_sync.profile_store import changelog  # noqa: E402
from profile_sync.profile_store.store import ProfileStore, insert_frame, make_engine  # noqa: E402
from profile_sync.sites import PushRequest, push_site  # noqa: E402
from profile_sync.sites.config import list_table  # noqa: E402


def _profile_store(url: str, people: int) -> tuple[ProfileStore, pd.DataFrame]:
    store = ProfileStore(make_engine(url), dict(BUILTIN_PROPERTIES))
    now = datetime.now(timezone.utc)
    i = pd.RangeIndex(people)
    upn = "user" + i.astype(str) + "@contoso.com"
    frame = pd.DataFrame({
        "profile_id": [f"{n:08d}-0000-4000-8000-000000000000" for n in i],
        "account_name": "i:0#.f|membership|" + upn, "user_name": upn, "user_principal_name": upn,
        "preferred_name": "User " + i.astype(str), "first_name": "User", "last_name": i.astype(str),
        "work_phone": "+1 555 " + (i % 10000).astype(str), "work_email": upn, "sip_address": upn,
        "office": "Building " + (i % 7).astype(str), "title": "Title " + (i % 50).astype(str),
        "job_title": "Title " + (i % 50).astype(str), "department": "Dept " + (i % 20).astype(str),
        "language_preferences": "en-US", "manager": "i:0#.f|membership|user" + (i // 10).astype(str) + "@contoso.com",
        "public_site_redirect": "https://contoso.com/" + i.astype(str), "state": "active",
        "created_at": now, "updated_at": now,
    })
    with store.engine.begin() as conn:
        store.ensure_schema(conn, None)
        with changelog.suspended(conn):
            insert_frame(conn, store.profiles, frame)
    return store, frame


def _change(store: ProfileStore, ids: list[str], run: int) -> None:
    """What an export does to ``ids``: new values, ``updated_at`` stamped, no change-log entry."""
    p = store.profiles
    now = datetime.now(timezone.utc)
    with store.engine.begin() as conn, changelog.suspended(conn):
        conn.execute(update(p).where(p.c.profile_id == bindparam("pid")).values(title=bindparam("t"), updated_at=now),
                     [{"pid": pid, "t": f"Changed {run}"} for pid in ids])


def _list(url: str, names: list[str]) -> None:
    engine = create_engine(url)
    t = list_table("user_information_list")
    with engine.begin() as conn:
        t.create(conn, checkfirst=True)
        conn.execute(insert(t), [{"account_name": n} for n in names])
    engine.dispose()


def _push_all(sites: list[tuple[SiteConnection, str]], store_url: str, mode: str) -> tuple[float, int, dict]:
    t0 = time.perf_counter()
    written = 0
    parts: dict[str, float] = {}
    for site, url in sites:
        result = push_site(PushRequest(site, url, store_url, run_id="bench", requested_mode=mode))
        written += result.stats["written"]
        for k, v in result.timings.items():
            parts[k] = parts.get(k, 0.0) + v
    return time.perf_counter() - t0, written, parts


def _postgres_sites(n: int):  # noqa: ANN202
    try:
        from tests.servers.postgres import PostgresServer

        server = PostgresServer().start()
    except Exception as exc:  # noqa: BLE001  (the benchmark runs without PostgreSQL too)
        print(f"  (PostgreSQL sites skipped: {exc})")
        return None, []
    urls = []
    for k in range(n):
        server.psql(f'CREATE DATABASE "site_{k}" OWNER "{server.user}"')
        urls.append(server.url.rsplit("/", 1)[0] + f"/site_{k}")
    return server, urls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=10)
    ap.add_argument("--listed", type=int, default=10_000, help="people listed on each site")
    ap.add_argument("--people", type=int, default=20_000, help="profiles in the profile store")
    ap.add_argument("--change", type=float, default=1.0, help="%% of the profiles changed between pushes")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite sites only")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="profile-sync-bench-sites-"))
    server = None
    try:
        store_url = f"sqlite:///{tmp / 'profiles.db'}"
        t0 = time.perf_counter()
        store, people = _profile_store(store_url, args.people)
        print(f"profile store: {args.people:,} profiles (SQLite) in {time.perf_counter() - t0:.1f} s")
        names = people["account_name"].tolist()
        backends = {"sqlite": [f"sqlite:///{tmp / f'site_{k}.db'}" for k in range(args.sites)]}
        if not args.no_postgres:
            server, pg_urls = _postgres_sites(args.sites)
            if pg_urls:
                backends["postgresql"] = pg_urls
        for backend, urls in backends.items():
            sites = [(SiteConnection(name=f"site_{k}", url=url) if backend == "sqlite"
                      else SiteConnection(name=f"site_{k}", conn_id=f"site_{k}"), url)  # the URL holds a password
                     for k, url in enumerate(urls)]
            for _, url in sites:
                _list(url, rng.sample(names, args.listed))
            print(f"\n{backend}: {args.sites} sites × {args.listed:,} listed people")
            rows = []
            seconds, written, parts = _push_all(sites, store_url, "incremental")
            rows.append(("first push (all listed people new)", seconds, written, parts))
            seconds, written, parts = _push_all(sites, store_url, "full")
            rows.append(("full push (on request)", seconds, written, parts))
            changed = rng.sample(people["profile_id"].tolist(), int(args.people * args.change / 100))
            _change(store, changed, 1)
            seconds, written, parts = _push_all(sites, store_url, "incremental")
            rows.append((f"incremental, {args.change:g} % changed ({len(changed):,} profiles)", seconds, written,
                         parts))
            seconds, written, parts = _push_all(sites, store_url, "incremental")
            rows.append(("incremental, nothing changed", seconds, written, parts))
            for label, seconds, written, parts in rows:
                detail = ", ".join(f"{k[:-2]} {v:.2f}" for k, v in parts.items() if k != "total_s")
                print(f"  {label:<48} {seconds:7.2f} s  ({seconds / len(sites):.2f} s/site)  "
                      f"{written:>7,} rows written   [{detail}]")
            full, inc = rows[1][1], rows[2][1]
            print(f"  incremental at {args.change:g} % / full push: {inc / full:.2f}")
            for _, url in sites:
                make_engine(url).dispose()
    finally:
        if server is not None:
            server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
