"""The floor: what the raw tools take for the same work, measured in the same run.

* the read: ``ldapsearch`` of the same entries (same base DNs, filter, attributes and page size) —
  libldap decoding and writing LDIF, the least any client does;
* the write: ``psql`` ``\\copy`` of the rows the engine wrote (``user_profiles``, ``user_groups``,
  ``group_memberships``, exported from the profile store after the sync) into empty copies of those
  tables (``LIKE … INCLUDING ALL``: same columns, defaults, keys and indexes), in one transaction,
  over TCP as the engine's account.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PROFILE_TABLES = ("user_profiles", "user_groups", "group_memberships")


@dataclass(frozen=True)
class Timed:
    seconds: float
    count: int
    """Entries read / rows copied, to check the floor did the same work."""
    cpu_s: float = 0.0
    """CPU seconds of the tool's own process(es) (not the server's)."""


def _children_cpu() -> float:
    import resource

    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def ldapsearch(uri: str, bind_dn: str, password: str, bases: list[str], search_filter: str,
               attributes: list[str], page_size: int, out: Path, repeat: int = 3) -> Timed:
    """Paged ``ldapsearch`` of every base, LDIF to ``out``; the entries it wrote.

    Run ``repeat`` times, the fastest kept (with its CPU time): one run's wall time here varied 1.1–3.6 s
    at 100,000 entries (the disk busy with the database's checkpoint after the full sync's export), and a
    floor is what the tool can do."""
    binary = shutil.which("ldapsearch")
    if binary is None:
        raise SystemExit("ldapsearch not found: install ldap-utils (bash tests/servers/install.sh)")
    best: Timed | None = None
    for _ in range(max(1, repeat)):
        total = 0.0
        cpu0 = _children_cpu()
        with out.open("wb") as sink:
            for base in bases:
                t0 = time.perf_counter()
                subprocess.run([binary, "-LLL", "-x", "-H", uri, "-D", bind_dn, "-y", _secret_file(out, password),
                                "-b", base, "-s", "sub", "-a", "never", "-E", f"pr={page_size}/noprompt",
                                search_filter, *attributes], stdout=sink, check=True, timeout=1800)
                total += time.perf_counter() - t0
        with out.open("rb") as f:
            count = sum(1 for line in f if line.startswith((b"dn: ", b"dn:: ")))
        run = Timed(total, count, _children_cpu() - cpu0)
        if best is None or run.seconds < best.seconds:
            best = run
    assert best is not None
    return best


def _secret_file(near: Path, password: str) -> str:
    path = near.with_suffix(".pw")
    path.write_text(password)  # ldapsearch -y reads the whole file, no newline
    path.chmod(0o600)
    return str(path)


def psql_copy(pg, work: Path) -> Timed:  # noqa: ANN001  (tests.servers.PostgresServer)
    """Export the profile-store tables, then time ``\\copy`` of those rows into empty copies."""
    env = {**os.environ, "PGPASSWORD": pg.password, "PGOPTIONS": "-c client_min_messages=warning"}
    psql = [pg._bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.host, "-p", str(pg.port),
            "-U", pg.user, "-d", pg.database]
    rows = 0
    export = [f"\\copy {t} to '{work / (t + '.csv')}' csv" for t in PROFILE_TABLES]
    prepare = [f"drop table if exists floor_{t}; create table floor_{t} (like {t} including all);"
               for t in PROFILE_TABLES]
    subprocess.run([*psql, "-c", "\n".join(prepare)], env=env, check=True, timeout=600)
    for line in export:
        subprocess.run([*psql, "-c", line], env=env, check=True, timeout=600)
    for t in PROFILE_TABLES:
        with (work / f"{t}.csv").open("rb") as f:
            rows += sum(1 for _ in f)
    script = work / "floor-copy.sql"
    script.write_text("\n".join(f"\\copy floor_{t} from '{work / (t + '.csv')}' csv" for t in PROFILE_TABLES) + "\n")
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    subprocess.run([*psql, "-1", "-f", str(script)], env=env, check=True, timeout=1800)
    seconds = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0
    subprocess.run([*psql, "-c", " ".join(f"drop table floor_{t};" for t in PROFILE_TABLES)], env=env, check=True,
                   timeout=600)
    return Timed(seconds, rows, cpu)
