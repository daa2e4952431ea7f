"""Airflow local settings of the Profile Sync project: preloading, no policies.

Airflow imports ``airflow_local_settings`` in each of its processes at start-up (the plugins folder is on
its path). This one defines no cluster policy (``__all__`` is empty). In the processes that start tasks —
``airflow scheduler`` (the LocalExecutor forks its workers from it, and a worker forks each task) and
``airflow celery worker`` — it imports the third-party libraries the engine's steps use (pandas, pyarrow,
SQLAlchemy, the PostgreSQL driver, python-ldap, ldap3, pydantic, YAML, fsspec), so every task process
starts with them loaded instead of importing them again: about 0.6 s less per task here (README: Speed).
Great Expectations too: the gate (``validate_export``) imported it in every run, 1.4–2.1 s here; preloaded, the
scheduler or worker pays that once when it starts (and ~150 MB, shared with the tasks it forks).

Airflow's side of a task is warmed the same way, just before such a process forks for the first time
(``os.register_at_fork``; Airflow is fully initialised by then): the task runner, the operators the DAG
files use, and the providers' asset URI handlers — the first ``Asset`` a process builds imports every
provider's asset module (Amazon's pulls in the S3 hook and boto3, ~0.1 s), which each task's parse of
the DAG file paid again.

The project's own modules (``include/``) are not preloaded: a new version deployed takes effect at the
next task, without restarting the scheduler or the workers. ``PROFILE_SYNC_PRELOAD=0`` turns preloading
off. A deployment with its own ``airflow_local_settings.py`` in ``$AIRFLOW_HOME/config`` shadows this one
(Airflow puts that folder first on its path): add :func:`preload` to it to keep the gain.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings

__all__: list[str] = []  # no policies: Airflow copies the names listed here into its settings

MODULES = ("pandas", "pyarrow", "pyarrow.parquet", "pyarrow.csv", "sqlalchemy", "psycopg2", "ldap", "ldap3",
           "pydantic", "yaml", "fsspec", "tenacity", "great_expectations")
"""What the steps import (the engine's third-party libraries), in import order."""

AIRFLOW_MODULES = ("airflow.sdk.execution_time.task_runner", "airflow.providers.standard.operators.hitl",
                   "airflow.providers.standard.operators.python")
"""Airflow's modules a task process imports to parse the DAG files and run a task."""

TASK_STARTERS = (("scheduler",), ("celery", "worker"), ("standalone",))
"""The ``airflow`` commands whose processes fork task processes."""


def starts_tasks(argv: list[str]) -> bool:
    """Whether ``argv`` (an ``airflow …`` command line) is a process that forks task processes."""
    args = [a for a in argv[1:] if not a.startswith("-")]
    return any(tuple(args[:len(cmd)]) == cmd for cmd in TASK_STARTERS)


def preload(modules: tuple[str, ...] = MODULES) -> list[str]:
    """Import ``modules`` (those installed); returns the ones imported."""
    done = []
    for name in modules:
        try:
            with warnings.catch_warnings():  # GX imports the deprecated sre_constants: not the operator's concern
                warnings.simplefilter("ignore", DeprecationWarning)
                importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional driver missing must never stop Airflow
            logging.getLogger(__name__).debug("preload: %s not imported", name, exc_info=True)
            continue
        done.append(name)
    return done


def preload_airflow() -> list[str]:
    """Import :data:`AIRFLOW_MODULES` and load the providers' asset URI handlers; returns what was loaded."""
    done = preload(AIRFLOW_MODULES)
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        ProvidersManagerTaskRuntime().asset_uri_handlers  # noqa: B018 - loads them, once per process
        done.append("asset_uri_handlers")
    except Exception:  # noqa: BLE001 - never stop Airflow; the task loads them itself then
        logging.getLogger(__name__).debug("preload: asset URI handlers not loaded", exc_info=True)
    return done


_forked = False


def preload_before_first_fork() -> None:
    """Load Airflow's side of a task once per process, before its first fork (a forked child inherits the flag)."""
    global _forked  # noqa: PLW0603
    if _forked:
        return
    _forked = True
    preload_airflow()


if os.environ.get("PROFILE_SYNC_PRELOAD", "1") != "0" and starts_tasks(sys.argv):
    preload()
    os.register_at_fork(before=preload_before_first_fork)
