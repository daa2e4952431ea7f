"""Benchmarks: ``make bench`` (``python -m tests.bench [--people N]``).

Targets are reported as ratios measured in one run against a floor, never as
absolute timing asserts (the machine is shared and noisy):

- full synchronization / floor, where the floor is reading and parsing the
  directory export once (the least any synchronization must do);
- incremental synchronization at 1% change / full synchronization;
- peak memory / size of the directory export;
- steps 9–12 (business-system augmentation): one HR row per person (plus a
  second row for a tenth of them, a multi-valued property) in a SQLite HR
  database, joined to every person; reported against the floor of reading the
  HR table once, with the memory they added.

Runs the engine in-process (``run/local.py``), without Airflow's per-task overhead.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "include"), str(ROOT)]

from profile_sync.config import load_settings  # noqa: E402
from profile_sync.directory.ldif_reader import LdifDirectoryReader  # noqa: E402
from profile_sync.run.context import RunContext  # noqa: E402
from profile_sync.run.local import run_sync  # noqa: E402
from profile_sync.sample import generate, write_ldif  # noqa: E402


def _config(tmp: Path, ldif: Path, **extra: object) -> Path:
    path = tmp / "profile_sync.yaml"
    path.write_text(yaml.safe_dump({
        "state_store": {"url": f"file://{tmp / 'state'}"},
        "profile_store": {"url": f"sqlite:///{tmp / 'profiles.db'}"},
        "directories": [{"name": "contoso", "type": "ldif", "path": str(ldif),
                         "containers": ["DC=contoso,DC=com"],
                         "excluded_containers": ["OU=Service Accounts,DC=contoso,DC=com"]}],
        **extra,
    }))
    return path


HR_CUSTOM = {"employee_id": {"max_length": 16}, "hire_date": {"type": "date"}, "cost_centre": {"max_length": 8},
             "certifications": {"multi_valued": True, "max_length": 32}}


def _hr_database(tmp: Path, directory) -> tuple[str, int]:  # noqa: ANN001
    """An HR table keyed by ``DOMAIN\\sAMAccountName``: one row per person, a second for every tenth."""
    import pandas as pd
    from sqlalchemy import create_engine

    logins = [f"CONTOSO\\{p.sam_account_name}" for p in directory.people]
    n = len(logins)
    rows = pd.DataFrame({
        "login": logins,
        "employee_number": [f"E{i:07d}" for i in range(n)],
        "hired": [f"20{10 + i % 15:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
        "cost_center": [f"CC{i % 500:04d}" for i in range(n)],
        "certification": [f"Cert {i % 40}" for i in range(n)],
    })
    extra = rows.iloc[::10].assign(certification=lambda f: "Second " + f["certification"])
    rows = pd.concat([rows, extra], ignore_index=True)
    url = f"sqlite:///{tmp / 'hr.db'}"
    engine = create_engine(url)
    rows.to_sql("employees", engine, index=False, chunksize=50_000)
    engine.dispose()
    return url, len(rows)


def _bcs_bench(tmp: Path, ldif: Path, directory) -> None:  # noqa: ANN001
    from sqlalchemy import create_engine, text

    url, rows = _hr_database(tmp, directory)
    t0 = time.perf_counter()
    engine = create_engine(url)
    with engine.connect() as conn:
        read = len(conn.execute(text("SELECT * FROM employees")).fetchall())
    engine.dispose()
    floor = time.perf_counter() - t0
    config = _config(tmp, ldif, custom_properties=HR_CUSTOM, business_systems=[{
        "name": "hr", "type": "sql", "url": url, "table": "employees",
        "join": {"profile_property": "user_principal_name", "source_column": "login",
                 "normalize": ["strip", "lower", "domain_user", "upn_local_part"]},
        "mappings": {"employee_id": "employee_number", "hire_date": "hired", "cost_centre": "cost_center",
                     "certifications": "certification"}}])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _, out = _sync(config, "bench-bcs", "full")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    bcs = {k: v for k, v in out.items() if k.endswith("[hr]")}
    seconds = sum(v.get("duration_s", 0) for v in bcs.values())
    print(f"  steps 9-12, {rows:,} HR rows ({read:,} read in the floor) joined to the people, first run:")
    print(f"      {seconds:8.1f} s   ratio to floor (one SELECT of the HR table, {floor:.1f} s) {seconds / floor:5.1f}")
    print("      " + ", ".join(f"{k.split('[')[0]} {v.get('duration_s', 0):.1f}s" for k, v in bcs.items()))
    export = out.get("export_bcs[hr]", {})
    print(f"      exported: {', '.join(f'{k} {v:,}' for k, v in export.items() if isinstance(v, int))}")
    print(f"      peak memory of the process after steps 9-12 {after:,.0f} MB (before {before:,.0f} MB)")


def _sync(config: Path, run_id: str, mode: str) -> tuple[float, dict]:
    ctx = RunContext(run_id=run_id, settings=load_settings(config), project_root=config.parent, requested_mode=mode)
    t0 = time.perf_counter()
    out = run_sync(ctx)
    return time.perf_counter() - t0, out


def _steps(out: dict) -> str:
    return ", ".join(f"{k.split('[')[0]} {v.get('duration_s', 0):.1f}s" for k, v in out.items()
                     if isinstance(v, dict) and v.get("duration_s", 0) >= 0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--change", type=float, default=0.01, help="share of people changed for the incremental run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--no-bcs", action="store_true", help="skip the business-system benchmark (steps 9-12)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="profile-sync-bench-"))
    try:
        directory = generate(people=args.people, groups=args.groups, seed=42)
        ldif = tmp / "directory.ldif"
        write_ldif(directory, ldif)
        config = _config(tmp, ldif)
        size_mb = ldif.stat().st_size / 2**20

        t0 = time.perf_counter()
        entries = sum(1 for _ in LdifDirectoryReader("contoso", ldif).read_full())
        floor = time.perf_counter() - t0

        full, full_out = _sync(config, "bench-full", "full")
        rnd = random.Random(1)
        changed = rnd.sample(range(len(directory.people)), max(1, int(len(directory.people) * args.change)))
        for i in changed:
            directory.people[i].title = f"Changed {i}"
        write_ldif(directory, ldif)
        inc, inc_out = _sync(config, "bench-incremental", "incremental")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        print(f"Profile Sync benchmark: {args.people:,} people, {args.groups:,} groups, {entries:,} LDIF records "
              f"({size_mb:.0f} MB)")
        print(f"  floor (read + parse the export once)   {floor:8.1f} s")
        print(f"  full synchronization                   {full:8.1f} s   ratio to floor {full / floor:5.1f}")
        print(f"      {_steps(full_out)}")
        print(f"  incremental, {len(changed):,} people changed ({args.change:.0%}) {inc:8.1f} s   "
              f"ratio to full {inc / full:5.2f}")
        print(f"      {_steps(inc_out)}")
        print(f"  peak memory                            {rss_mb:8.0f} MB  ratio to export size {rss_mb / size_mb:5.1f}")
        updates = inc_out["export_profile_store"]["updates"]
        print(f"  incremental exported {updates:,} updates (expected {len(changed):,} minus people out of scope)")
        if not args.no_bcs:
            _bcs_bench(tmp, ldif, directory)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
