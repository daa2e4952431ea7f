"""One synchronization in a process of its own: ``make bench`` runs every sync through this, so each
pays its own imports (Great Expectations included) and its peak memory is its own.

    python -m tests.bench.child SPEC.json OUT.json

SPEC: ``{"config": path, "project_root": path, "run_id": str, "mode": "full" | "incremental",
"connections": {conn_id: ConnectionInfo fields}}``. The engine runs through its in-process runner
(``run/local.py``), no Airflow. OUT: ``{"import_s", "engine_s", "steps", "rss_mb"}`` — seconds spent
importing the engine, the wall time of ``run_sync``, the step summaries (each with its ``duration_s``),
and per step the process's CPU seconds and peak resident memory during the step (``/proc/self/status``
VmHWM, reset before each step through ``/proc/self/clear_refs``). With ``PROFILE_SYNC_BENCH_PROFILE=<folder>``
each run also leaves its cProfile statistics there (``<run_id>.<mode>.pstats``; profiling slows it down).
"""

from __future__ import annotations

import time

_t0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "include"), str(ROOT)]

from profile_sync.config import load_settings  # noqa: E402
from profile_sync.run.context import ConnectionInfo, RunContext  # noqa: E402
from profile_sync.run import steps as engine_steps  # noqa: E402
from profile_sync.run.local import run_sync  # noqa: E402

STEPS = ("start_run", "import_directory", "import_profile_store", "synchronize", "validate_export",
         "export_profile_store", "confirm_profile_store", "synchronize_writeback", "export_directory",
         "confirm_directory", "finish_run", "release_run")
BCS_STEPS = ("import_bcs", "synchronize_bcs", "validate_bcs", "export_bcs", "confirm_bcs")


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_hwm() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux 4.0+)
    except OSError:
        pass


def measure_steps(record: list[dict], bcs: bool) -> None:
    """Wrap the engine's step functions (looked up by name at call time by the runner) to record, per call,
    CPU seconds and peak RSS. Measurement only: arguments and results pass through untouched."""
    import functools
    import resource

    def wrap(fn):  # noqa: ANN001, ANN202
        @functools.wraps(fn)
        def measured(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            _reset_hwm()
            before = resource.getrusage(resource.RUSAGE_SELF)
            try:
                return fn(*args, **kwargs)
            finally:
                after = resource.getrusage(resource.RUSAGE_SELF)
                record.append({"step": fn.__name__, "connection": args[1] if len(args) > 1 else None,
                               "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3),
                               "peak_rss_mb": round(_hwm_mb())})
        return measured

    for name in STEPS:
        setattr(engine_steps, name, wrap(getattr(engine_steps, name)))
    if bcs:  # imported only then, as the runner does
        from profile_sync.run import bcs_steps

        for name in BCS_STEPS:
            setattr(bcs_steps, name, wrap(getattr(bcs_steps, name)))


def main(spec_path: str, out_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    connections = {k: ConnectionInfo(**v) for k, v in spec.get("connections", {}).items()}
    imported = time.perf_counter() - _t0
    baseline_mb = _hwm_mb()
    settings = load_settings(Path(spec["config"]))
    measured: list[dict] = []
    measure_steps(measured, bool(settings.business_systems))
    ctx = RunContext(run_id=spec["run_id"], settings=settings, project_root=Path(spec["project_root"]),
                     requested_mode=spec["mode"], resolve_connection=connections.__getitem__)
    profile_dir = os.environ.get("PROFILE_SYNC_BENCH_PROFILE")  # a folder: cProfile stats of each run there
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    steps = run_sync(ctx)
    engine = time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(Path(profile_dir) / f"{spec['run_id']}.{spec['mode']}.pstats"))
    Path(out_path).write_text(json.dumps({"import_s": imported, "engine_s": engine, "steps": steps,
                                          "imports_rss_mb": round(baseline_mb), "measured": measured}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
