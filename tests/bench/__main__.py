"""Benchmarks: ``make bench [PEOPLE=100000]`` (``python -m tests.bench --people N``).

Ratios against a floor measured in the same run, never timing asserts (the machine is shared and noisy).

**slapd → PostgreSQL** (the first row; servers started by the project's scripts in ``tests/servers``):
the sample generator's ``N`` people and ``N/50`` groups are bulk-loaded into a throwaway slapd, a
throwaway PostgreSQL holds the profile store, and then

* **full**: a first full synchronization;
* **floor**: ``ldapsearch`` of the same entries (same bases, filter, attributes, page size) +
  ``psql`` ``\\copy`` of the rows the full sync wrote (see ``floor.py``);
* **no change**: a second full synchronization of the unchanged directory — checked to write nothing;
* **incremental**: 1 % of the people changed through LDAP (``directory.py``), then an incremental
  synchronization — checked to have read a delta and to have changed exactly those people's profiles.

Each synchronization runs in a process of its own (``child.py``): its imports are cold (Great
Expectations included) and its peak memory (``ru_maxrss`` of the child) is its own. *engine* is the wall
time of ``run_sync`` (every step, start to finish, the in-process runner); *process* adds the
interpreter and the imports.

**LDIF → SQLite** (the second row): the same people as an AD-shaped LDIF file into SQLite, full and
incremental, each in its own process; its floor is parsing the file with python-ldap's ``ldif`` module
(an independent parser), plus inserting the rows the sync wrote into an empty copy of its tables with
``sqlite3`` ``executemany``. Steps 9–12 (a business system: one HR row per person, a second for every
tenth, joined in memory) run in that row's full synchronization unless ``--no-bcs``.

**Airflow overhead** (``airflow_run.py``, skipped with ``--no-airflow``): after the incremental run, a
throwaway Airflow (scheduler with LocalExecutor, dag-processor, api-server, its metadata DB a database of
the bench's PostgreSQL) runs ``profile_sync_incremental`` on the same directory and stores, once per task
layout (``tasks.incremental``: ``per_step``, then ``fused``, each its own Airflow), triggered through the
REST API, twice: the second run (the scheduler warm, as in production) is measured, its wall
time (queued → end) minus the engine's time (its steps in the run history); the first is reported too.
Before each of those runs another 1 % of the people change (other people each round), so each run
synchronizes a change through every step, the gate's Great Expectations included, as a scheduled
incremental run does; its steps' times are printed beside the overhead. The DAGs' schedules are off in
that Airflow: only the two triggered runs run. With
``PROFILE_SYNC_BENCH_AIRFLOW_LOGS=<folder>`` each Airflow's task logs and its scheduler's, dag-processor's
and api-server's logs are kept there (one folder per layout), to see where a slow task spent its time.

Before anything is measured the project's own modules (``include/``, ``dags/``, ``plugins/``) are compiled
to bytecode, as ``make run`` does and as a deployment has them: where the environment sets
``PYTHONDONTWRITEBYTECODE`` (this machine's does) Python writes no ``__pycache__`` itself, and every
measured process — each synchronization, each Airflow task — would otherwise compile them again.

The last line printed is one JSON object (``people``, ``floor_s``, ``full_engine_s``, ``full_ratio``,
``nochange_engine_s``, ``nochange_ratio``, ``incremental_engine_s``, ``airflow_overhead_s``,
``peak_rss_mb`` …).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "include"), str(ROOT)]

from tests.bench import directory as bench_directory  # noqa: E402
from tests.bench import floor  # noqa: E402

PAGE_SIZE = 1000
STEP_ORDER = ["import_directory", "import_profile_store", "synchronize", "validate_export", "export_profile_store",
              "confirm_profile_store", "synchronize_writeback", "export_directory", "confirm_directory"]


class BenchFailed(SystemExit):
    """A check of the benchmark failed (the run did not do what it claims to measure)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"bench check failed: {message}")


@dataclass
class SyncRun:
    label: str
    engine_s: float
    process_s: float
    cpu_s: float
    import_s: float
    peak_rss_mb: float
    imports_rss_mb: float
    steps: dict[str, Any]
    measured: list[dict[str, Any]]
    """Per step call: cpu_s and peak_rss_mb (see child.py)."""

    def step(self, name: str) -> dict[str, Any]:
        return next(v for k, v in self.steps.items() if k.split("[")[0] == name)

    def per_step(self) -> dict[str, dict[str, float]]:
        """Step → wall s, CPU s, peak MB (steps that took under 0.05 s left out)."""
        out = {}
        for m in self.measured:
            key = f"{m['step']}[{m['connection']}]" if m["connection"] else m["step"]
            summary = self.steps.get(key) or {}
            wall = summary.get("duration_s") if isinstance(summary, dict) else None
            if wall is not None and wall >= 0.05:
                out[key] = {"wall_s": wall, "cpu_s": m["cpu_s"], "peak_rss_mb": m["peak_rss_mb"]}
        return out

    def durations(self) -> str:
        return ", ".join(f"{k.split('[')[0]} {v['wall_s']:.2f}/{v['cpu_s']:.2f}/{v['peak_rss_mb']:.0f}"
                         for k, v in self.per_step().items())


def run_child(work: Path, label: str, config: Path, mode: str, connections: dict[str, dict[str, Any]]) -> SyncRun:
    """One synchronization in a fresh process; its wall time and peak RSS from wait4."""
    spec = work / f"{label}.spec.json"
    out = work / f"{label}.out.json"
    spec.write_text(json.dumps({"config": str(config), "project_root": str(config.parent), "run_id": f"bench-{label}",
                                "mode": mode, "connections": connections}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT)])}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tests.bench.child", str(spec), str(out)], cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchFailed(f"the {label} synchronization failed (exit {proc.returncode})")
    result = json.loads(out.read_text())
    # The child resets its high-water mark before each step (child.py), which resets ru_maxrss too: the
    # process's peak is the largest of the steps' peaks (and of what wait4 saw after the last reset).
    peak = max([usage.ru_maxrss / 1024, result["imports_rss_mb"]] + [m["peak_rss_mb"] for m in result["measured"]])
    return SyncRun(label, result["engine_s"], wall, usage.ru_utime + usage.ru_stime, result["import_s"],
                   peak, result["imports_rss_mb"], result["steps"], result["measured"])


def _write_config(path: Path, **content: Any) -> Path:
    path.write_text(yaml.safe_dump(content))
    return path


# -- slapd → PostgreSQL ----------------------------------------------------------------------------------
def bench_ldap(work: Path, people: int, groups: int, share: float, with_airflow: bool) -> dict[str, Any]:
    from profile_sync.config.loader import load_settings, resolved_directories
    from profile_sync.directory.ldap import LdapConnectionSettings, LdapDirectoryReader
    from profile_sync.run.context import ConnectionInfo

    from tests.servers import PostgresServer, SlapdServer

    t0 = time.perf_counter()
    sample = bench_directory.sample(people, groups)
    memberships = sum(len(g.member_keys) for g in sample.groups)
    slapd = SlapdServer(tls=False)
    pg = PostgresServer()
    try:
        bench_directory.load(slapd, sample)
        slapd.start()
        pg.start()
        setup_s = time.perf_counter() - t0
        ldap_info = {"conn_id": "bench_slapd", "host": slapd.uri, "login": slapd.admin_dn,
                     "password": slapd.admin_password, "extra": {"page_size": PAGE_SIZE}}
        config = _write_config(
            work / "ldap" / "profile_sync.yaml",
            state_store={"url": f"file://{work / 'ldap' / 'state'}"},
            profile_store={"conn_id": "bench_profile_store"},
            directories=[{"name": "openldap", "type": "ldap", "conn_id": "bench_slapd", "preset": "inetorgperson",
                          "containers": [bench_directory.BASE_DN],
                          "excluded_containers": [bench_directory.EXCLUDED]}])
        connections = {"bench_slapd": ldap_info, "bench_profile_store": {"conn_id": "bench_profile_store",
                                                                         "uri": pg.url}}

        full = run_child(work, "ldap-full", config, "full", connections)
        imported = full.step("import_directory")

        # The floor: the same read with ldapsearch, the same rows with psql \copy.
        d = resolved_directories(load_settings(config))[0]
        reader = LdapDirectoryReader(d, LdapConnectionSettings.from_connection_info(
            d.name, ConnectionInfo(**ldap_info)))
        request = reader.request_attributes(frozenset(d.attributes) | {"objectclass"}, "openldap")
        read = floor.ldapsearch(slapd.uri, slapd.admin_dn, slapd.admin_password, reader.base_dns,
                                reader.object_filter, request, PAGE_SIZE, work / "floor.ldif")
        copy = floor.psql_copy(pg, work)
        if read.count < imported["objects"]:
            raise BenchFailed(f"ldapsearch read {read.count} entries, the sync imported {imported['objects']}")

        nochange = run_child(work, "ldap-nochange", config, "full", connections)
        export = nochange.step("export_profile_store")
        written = {k: export.get(k, 0) for k in ("adds", "updates", "deletes", "group_adds", "group_updates",
                                                 "group_deletes", "membership_adds", "membership_removes")}
        if any(written.values()):
            raise BenchFailed(f"the no-change full sync wrote something: {written}")

        changes = bench_directory.change(slapd.uri, slapd.admin_dn, slapd.admin_password, sample, share)
        before = _pg_now(pg)
        incremental = run_child(work, "ldap-incremental", config, "incremental", connections)
        _check_incremental(incremental, changes, _changed_accounts(pg, before))
        airflow = None
        if with_airflow:
            from tests.bench import airflow_run

            airflow = {}
            gone = set(changes.deleted)
            rounds = itertools.count(1)

            def change_again() -> str:
                """Another 1 % change before each scheduled run: it synchronizes a change, as in production."""
                more = bench_directory.change(slapd.uri, slapd.admin_dn, slapd.admin_password, sample, share,
                                              next(rounds), gone)
                gone.update(more.deleted)
                return more.describe()

            for layout in ("per_step", "fused"):  # the two task layouts (README: tasks.incremental)
                layout_config = config.with_name(f"profile_sync_{layout}.yaml")
                # No schedules: unpaused, the incremental DAG would also start a scheduled run (the last
                # quarter hour's, and one at each quarter hour), which interleaves with the measured run through
                # the lease and the executor's slots (seen: a measured run 5 s longer).
                layout_config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()),
                                                         "tasks": {"full": layout, "incremental": layout},
                                                         "schedule": {"full": None, "incremental": None}}))
                meta = f"airflow_meta_{layout}"  # Airflow's metadata DB in PostgreSQL, as in production
                pg.psql(f'CREATE DATABASE "{meta}" OWNER "{pg.user}"')
                airflow[layout] = airflow_run.measure(layout_config, connections, "profile_sync_incremental", {},
                                                      metadata_url=pg.url.rsplit("/", 1)[0] + "/" + meta,
                                                      before_each=change_again)
    finally:
        slapd.close()
        pg.close()
    floor_s = read.seconds + copy.seconds
    return {"setup_s": setup_s, "people": people, "groups": groups, "memberships": memberships,
            "entries": read.count, "rows": copy.count, "read": read, "copy": copy, "floor_s": floor_s,
            "full": full, "nochange": nochange, "incremental": incremental, "changes": changes, "airflow": airflow}


def _pg_now(pg) -> str:  # noqa: ANN001
    return pg.psql("select now()::text", database=pg.database).strip()


def _changed_accounts(pg, since: str) -> set[str]:  # noqa: ANN001
    """Account names (lower-case mail) of the profiles created, updated or marked since ``since``."""
    out = pg.psql("select lower(work_email) from user_profiles where "
                  f"created_at >= '{since}' or updated_at >= '{since}' or marked_for_deletion_at >= '{since}'",
                  database=pg.database)
    return {line.strip() for line in out.splitlines() if line.strip()}


def _check_incremental(run: SyncRun, changes: "bench_directory.Changes", changed: set[str]) -> None:
    imported = run.step("import_directory")
    if not imported.get("delta_read"):
        raise BenchFailed(f"the incremental run did not read a delta: {imported.get('full_import_reason')}")
    want = len(changes.modified) + len(changes.added)
    if imported.get("delta_entries") != want or imported.get("delta_deletes") != len(changes.deleted):
        raise BenchFailed(f"the delta read {imported.get('delta_entries')} entries and "
                          f"{imported.get('delta_deletes')} deletes; expected {want} and {len(changes.deleted)}")
    export = run.step("export_profile_store")
    got = (export["updates"], export["adds"], export["deletes"])
    if got != (len(changes.modified), len(changes.added), len(changes.deleted)):
        raise BenchFailed(f"the incremental export wrote {got} (updates, adds, deletes); expected "
                          f"{changes.describe()}")
    if changed != changes.all:
        raise BenchFailed(f"profiles changed by the incremental run differ from the changed people: "
                          f"{len(changed - changes.all)} unexpected, {len(changes.all - changed)} missing")


# -- LDIF → SQLite ---------------------------------------------------------------------------------------
HR_CUSTOM = {"employee_id": {"max_length": 16}, "hire_date": {"type": "date"}, "cost_centre": {"max_length": 8},
             "certifications": {"multi_valued": True, "max_length": 32}}


def bench_ldif(work: Path, people: int, groups: int, share: float, bcs: bool) -> dict[str, Any]:
    import random

    from profile_sync.sample import write_ldif

    folder = work / "ldif"
    folder.mkdir()
    sample = bench_directory.sample(people, groups)
    ldif = folder / "directory.ldif"
    write_ldif(sample, ldif)
    extra: dict[str, Any] = {}
    if bcs:
        url, hr_rows = _hr_database(folder, sample)
        extra = {"custom_properties": HR_CUSTOM, "business_systems": [{
            "name": "hr", "type": "sql", "url": url, "table": "employees",
            "join": {"profile_property": "user_principal_name", "source_column": "login",
                     "normalize": ["strip", "lower", "domain_user", "upn_local_part"]},
            "mappings": {"employee_id": "employee_number", "hire_date": "hired", "cost_centre": "cost_center",
                         "certifications": "certification"}}]}
    config = _write_config(
        folder / "profile_sync.yaml", state_store={"url": f"file://{folder / 'state'}"},
        profile_store={"url": f"sqlite:///{folder / 'profiles.db'}"},
        directories=[{"name": "contoso", "type": "ldif", "path": str(ldif), "containers": ["DC=contoso,DC=com"],
                      "excluded_containers": ["OU=Service Accounts,DC=contoso,DC=com"]}], **extra)
    t0 = time.perf_counter()
    with ldif.open("rb") as f:
        records = _parse_ldif(f)
    parse_s = time.perf_counter() - t0
    full = run_child(work, "ldif-full", config, "full", {})
    insert = _sqlite_insert_floor(folder / "profiles.db", folder / "floor.db")
    nochange = run_child(work, "ldif-nochange", config, "full", {})
    rnd = random.Random(1)
    changed = rnd.sample(range(len(sample.people)), max(1, int(len(sample.people) * share)))
    for i in changed:
        sample.people[i].title = f"Changed {i}"
    write_ldif(sample, ldif)
    incremental = run_child(work, "ldif-incremental", config, "incremental", {})
    out = {"records": records, "parse_s": parse_s, "insert": insert, "floor_s": parse_s + insert.seconds,
           "full": full, "nochange": nochange, "incremental": incremental, "changed": len(changed)}
    if bcs:
        out["hr_rows"] = hr_rows
    return out


def _parse_ldif(f) -> int:  # noqa: ANN001
    import ldif as python_ldap_ldif

    class Count(python_ldap_ldif.LDIFParser):
        records = 0

        def handle(self, dn, entry) -> None:  # noqa: ANN001
            self.records += 1

    parser = Count(f)
    parser.parse()
    return parser.records


def _sqlite_insert_floor(source: Path, target: Path) -> floor.Timed:
    """Insert the rows the sync wrote into empty copies of its tables (sqlite3 executemany, one transaction)."""
    src = sqlite3.connect(source)
    tables = {t: (src.execute(f"select sql from sqlite_master where type='table' and name='{t}'").fetchone()[0],
                  src.execute(f"select * from {t}").fetchall()) for t in floor.PROFILE_TABLES}
    src.close()
    target.unlink(missing_ok=True)
    dst = sqlite3.connect(target)
    t0 = time.perf_counter()
    rows = 0
    with dst:
        for ddl, data in tables.values():
            dst.execute(ddl)
            if data:
                dst.executemany(f"insert into {ddl.split()[2]} values ({','.join('?' * len(data[0]))})", data)
            rows += len(data)
    seconds = time.perf_counter() - t0
    dst.close()
    return floor.Timed(seconds, rows)


def _hr_database(folder: Path, sample) -> tuple[str, int]:  # noqa: ANN001
    """An HR table keyed by ``DOMAIN\\sAMAccountName``: one row per person, a second for every tenth."""
    import pandas as pd
    from sqlalchemy import create_engine

    logins = [f"CONTOSO\\{p.sam_account_name}" for p in sample.people]
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
    url = f"sqlite:///{folder / 'hr.db'}"
    engine = create_engine(url)
    rows.to_sql("employees", engine, index=False, chunksize=50_000)
    engine.dispose()
    return url, len(rows)


# -- report ----------------------------------------------------------------------------------------------
def _row(label: str, run: SyncRun | None, floor_s: float, note: str = "", cpu: float | None = None) -> str:
    if run is None:
        return f"  {label:<46}{'':>9}{'':>9}{cpu if cpu is not None else 0:>9.2f}{'':>9}{floor_s:>9.2f}"
    return (f"  {label:<46}{run.engine_s:>9.2f}{run.process_s:>9.2f}{run.cpu_s:>9.2f}{run.peak_rss_mb:>9.0f}"
            f"{floor_s:>9.2f}{run.engine_s / floor_s:>7.1f}x  {note}")


STEPS_NOTE = "      per step: wall s / CPU s / peak MB of the process during the step"


def report(ldap: dict[str, Any] | None, ldif: dict[str, Any] | None, people: int) -> dict[str, Any]:
    header = (f"  {'':<46}{'engine s':>9}{'proc s':>9}{'CPU s':>9}{'peak MB':>9}{'floor s':>9}{'ratio':>8}"
              "   (engine: run_sync wall; proc: the process, imports included; CPU: the process's)")
    load = os.getloadavg()[0]
    print(f"\nProfile Sync benchmark: {people:,} people — {os.cpu_count()} CPUs, load {load:.1f} at the end")
    summary: dict[str, Any] = {"people": people}
    if ldap is not None:
        read, copy = ldap["read"], ldap["copy"]
        full, nochange, inc = ldap["full"], ldap["nochange"], ldap["incremental"]
        print(f"slapd → PostgreSQL: {ldap['people']:,} people, {ldap['groups']:,} groups, {ldap['memberships']:,} "
              f"memberships ({read.count:,} entries read, {copy.count:,} rows written)")
        print(header)
        print(_row(f"floor: ldapsearch, {read.count:,} entries", None, read.seconds, cpu=read.cpu_s))
        print(_row(f"floor: psql \\copy, {copy.count:,} rows", None, copy.seconds, cpu=copy.cpu_s))
        print(STEPS_NOTE)
        print(_row("full sync (first)", full, ldap["floor_s"], "vs ldapsearch + copy"))
        print(f"      {full.durations()}")
        print(_row("full sync, nothing changed (writes nothing)", nochange, read.seconds, "vs ldapsearch"))
        print(f"      {nochange.durations()}")
        print(_row(f"incremental: {ldap['changes'].describe()}", inc, full.engine_s, "vs the full sync"))
        print(f"      {inc.durations()}")
        print(f"      delta read: {inc.step('import_directory').get('delta_entries')} entries, "
              f"{inc.step('import_directory').get('delta_deletes')} deletes, "
              f"{inc.step('import_directory').get('delta_rereads')} re-read; exported exactly the changed people")
        layouts = ldap["airflow"] or {}
        for layout, airflow in layouts.items():
            print(f"  scheduled by Airflow, tasks {layout} (LocalExecutor, {airflow['metadata_db']} metadata DB, "
                  f"{airflow['tasks']} tasks): {airflow['dag_id']} "
                  f"{airflow['wall_s']:.2f} s queued → end, engine {airflow['engine_s']:.2f} s: overhead "
                  f"{airflow['overhead_s']:.2f} s ({airflow['task_overhead_s']:.2f} s inside the tasks — process "
                  f"start-up, imports, task runner — and {airflow['between_tasks_s']:.2f} s between them, of which "
                  f"{airflow['before_first_task_s']:.2f} s before the first task); the first run after the "
                  f"scheduler started: overhead {airflow['first_run_after_start']['overhead_s']:.2f} s")
            if airflow.get("changes"):
                steps = ", ".join(f"{k} {v:.2f}" for k, v in airflow.get("engine_steps_s", {}).items() if v >= 0.05)
                print(f"      the run synchronized {airflow['changes']} (a new 1 % before each run); steps: {steps}")
        peak = max(full.peak_rss_mb, nochange.peak_rss_mb, inc.peak_rss_mb)
        summary.update({
            "groups": ldap["groups"], "memberships": ldap["memberships"], "entries": read.count, "rows": copy.count,
            "ldapsearch_s": round(read.seconds, 3), "copy_s": round(copy.seconds, 3),
            "floor_s": round(ldap["floor_s"], 3),
            "full_engine_s": round(full.engine_s, 3), "full_ratio": round(full.engine_s / ldap["floor_s"], 2),
            "full_process_s": round(full.process_s, 3),
            "nochange_engine_s": round(nochange.engine_s, 3),
            "nochange_ratio": round(nochange.engine_s / read.seconds, 2),
            "incremental_engine_s": round(inc.engine_s, 3),
            "incremental_ratio_to_full": round(inc.engine_s / full.engine_s, 3),
            "airflow_overhead_s": layouts["per_step"]["overhead_s"] if layouts else None,
            "airflow_overhead_fused_s": layouts["fused"]["overhead_s"] if layouts else None,
            "airflow": layouts or {"note": "not measured (--no-airflow)"},
            "peak_rss_mb": round(peak),
            "peak_rss_mb_by_run": {r.label: round(r.peak_rss_mb) for r in (full, nochange, inc)},
            "imports_rss_mb": round(full.imports_rss_mb),
            "cpu_s": {r.label: round(r.cpu_s, 2) for r in (full, nochange, inc)},
            "steps": {r.label: r.per_step() for r in (full, nochange, inc)},
        })
    if ldif is not None:
        full, nochange, inc = ldif["full"], ldif["nochange"], ldif["incremental"]
        print(f"LDIF → SQLite: {ldif['records']:,} LDIF records; floor: python-ldap's ldif parser "
              f"{ldif['parse_s']:.2f} s + sqlite3 executemany of {ldif['insert'].count:,} rows "
              f"{ldif['insert'].seconds:.2f} s")
        print(header)
        main_steps = {k: v for k, v in full.steps.items() if not k.endswith("[hr]")}
        engine_18 = sum(v["duration_s"] for v in main_steps.values() if isinstance(v, dict) and "duration_s" in v)
        print(_row("full sync (first)", full, ldif["floor_s"], f"steps 1-8: {engine_18:.2f} s"))
        print(f"      {full.durations()}")
        print(_row("full sync, nothing changed", nochange, ldif["parse_s"], "vs the parse"))
        print(_row(f"incremental: {ldif['changed']:,} titles changed", inc, full.engine_s, "vs the full sync"))
        print(f"      {inc.durations()}")
        summary["ldif"] = {"floor_s": round(ldif["floor_s"], 3), "full_engine_s": round(full.engine_s, 3),
                           "nochange_engine_s": round(nochange.engine_s, 3),
                           "incremental_engine_s": round(inc.engine_s, 3),
                           "peak_rss_mb": round(max(full.peak_rss_mb, nochange.peak_rss_mb, inc.peak_rss_mb))}
        if "hr_rows" in ldif:
            bcs = {k: v for k, v in full.steps.items() if k.endswith("[hr]")}
            seconds = sum(v["duration_s"] for v in bcs.values())
            names = ", ".join(f"{k.split('[')[0]} {v['duration_s']:.2f}" for k, v in bcs.items())
            print(f"  steps 9-12, {ldif['hr_rows']:,} HR rows joined to the people: {seconds:.2f} s ({names})")
            summary["ldif"]["bcs_s"] = round(seconds, 3)
    print(json.dumps(summary))
    return summary


def compile_project() -> None:
    """Compile the project's modules to bytecode (see the module docstring); quick when nothing changed."""
    import compileall

    root = Path(__file__).resolve().parents[2]
    for folder in ("include", "dags", "plugins"):
        if not compileall.compile_dir(str(root / folder), quiet=1):
            raise SystemExit(f"could not compile {root / folder}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=None, help="default: people / 50")
    parser.add_argument("--change", type=float, default=0.01, help="share of people changed for the incremental run")
    parser.add_argument("--only", choices=["ldap", "ldif"], help="run one row only")
    parser.add_argument("--no-bcs", action="store_true", help="skip steps 9-12 in the LDIF row")
    parser.add_argument("--no-airflow", action="store_true", help="skip the run started by a real Airflow scheduler")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    compile_project()
    groups = args.groups if args.groups is not None else max(1, args.people // 50)
    work = Path(tempfile.mkdtemp(prefix="profile-sync-bench-"))
    try:
        (work / "ldap").mkdir()
        ldap = (bench_ldap(work, args.people, groups, args.change, not args.no_airflow)
                if args.only in (None, "ldap") else None)
        ldif = (bench_ldif(work, args.people, groups, args.change, not args.no_bcs)
                if args.only in (None, "ldif") else None)
        report(ldap, ldif, args.people)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
