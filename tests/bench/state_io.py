"""The cost of the state store on object storage against a local folder (issue 11's target: at most 1.5×).

    python -m tests.bench.state_io [--people 100000]

One sample directory; the same synchronizations — a full run, then an incremental run after a 1 %
change — once with the state store in a local folder and once in an S3-compatible object store (moto's
server from tests/servers, on loopback), each synchronization in its own process. What is compared is
the state I/O the steps report (``state_io``: reading and writing Parquet objects; the manifests and
parts are rows of the coordination tables, the same in both), and the engine time (the sum of the
steps' durations: not the process start-up, not the imports). The profile
store is SQLite in both. moto is a Python server on the same two cores: a real object store would be
no slower. Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "include"), str(ROOT / "plugins"), str(ROOT)]


def _config(tmp: Path, ldif: Path, state: dict) -> Path:
    path = tmp / "profile_sync.yaml"
    path.write_text(yaml.safe_dump({
        "state_store": state,
        "profile_store": {"url": f"sqlite:///{tmp / 'profiles.db'}"},
        "directories": [{"name": "contoso", "type": "ldif", "path": str(ldif), "containers": ["DC=contoso,DC=com"],
                         "excluded_containers": ["OU=Service Accounts,DC=contoso,DC=com"]}],
        "gates": {"max_update_percent": None, "max_delete_percent": None, "max_deletes": None},
    }))
    return path


def _child(config: str, root: str, mode: str, run: str) -> None:
    """One synchronization in this process; prints what its steps read and wrote, and their time, as JSON."""
    from profile_sync.config import load_settings
    from profile_sync.run.context import RunContext
    from profile_sync.run.local import run_sync

    resolve = None
    if os.environ.get("AIRFLOW_CONN_BENCH_S3"):
        from profile_sync_airflow.hooks import state_store_filesystem as resolve
    ctx = RunContext(run_id=run, settings=load_settings(Path(config)), project_root=Path(root), requested_mode=mode,
                     resolve_filesystem=resolve)
    out = run_sync(ctx)
    summaries = [s for s in out.values() if isinstance(s, dict)]
    io = [s.get("state_io") or {} for s in summaries]
    print(json.dumps({"engine_s": sum(s.get("duration_s") or 0 for s in summaries), "mode": out["start_run"]["mode"],
                      "read_s": sum(i.get("read_s", 0) for i in io), "write_s": sum(i.get("write_s", 0) for i in io),
                      "reads": sum(i.get("reads", 0) for i in io), "writes": sum(i.get("writes", 0) for i in io),
                      "bytes_written": sum(i.get("bytes_written", 0) for i in io)}))


def _run(config: Path, root: Path, mode: str, run: str, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "tests.bench.state_io", "--child", str(config), str(root), mode, run],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{run} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--child", nargs=4)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0

    from profile_sync.sample import generate, write_ldif
    from tests.servers.s3 import S3Server

    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins"), str(ROOT)]),
           "AIRFLOW_HOME": tempfile.mkdtemp(prefix="bench-airflow-")}
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-state-io-") as tmp_name, S3Server() as s3:
        tmp = Path(tmp_name)
        import random

        directory = generate(people=args.people, groups=max(10, args.people // 50), seed=7)
        ldif = tmp / "directory.ldif"
        before_change = tmp / "before.ldif"
        after_change = tmp / "after.ldif"
        write_ldif(directory, before_change)
        for i in random.Random(1).sample(range(len(directory.people)), max(1, len(directory.people) // 100)):
            directory.people[i].title = f"Changed {i}"  # 1 % of the people change their title
        write_ldif(directory, after_change)
        bucket = s3.bucket(f"bench-{uuid.uuid4().hex[:10]}")
        stores = {"local folder": ({"url": f"file://{tmp / 'local' / 'state'}"}, {}),
                  "object storage (S3)": ({"url": f"s3://{bucket}/state", "conn_id": "bench_s3"},
                                          {"AIRFLOW_CONN_BENCH_S3": s3.airflow_connection()})}
        for label, (state, extra_env) in stores.items():
            root = tmp / label.split()[0]
            root.mkdir(exist_ok=True)
            config = _config(root, ldif, state)
            ldif.write_bytes(before_change.read_bytes())
            results[label] = {"full": _run(config, root, "full", "full-1", {**env, **extra_env})}
            ldif.write_bytes(after_change.read_bytes())
            results[label]["incremental"] = _run(config, root, "incremental", "inc-1", {**env, **extra_env})

    print(f"{'state store':<22}{'run':<13}{'state I/O s':>12}{'reads':>7}{'writes':>8}{'MB written':>12}{'engine s':>10}")
    for label, runs in results.items():
        for mode, r in runs.items():
            print(f"{label:<22}{mode:<13}{r['read_s'] + r['write_s']:>12.2f}{r['reads']:>7}{r['writes']:>8}"
                  f"{r['bytes_written'] / 1e6:>12.1f}{r['engine_s']:>10.2f}")
    local, remote = results["local folder"], results["object storage (S3)"]
    io = lambda r: r["full"]["read_s"] + r["full"]["write_s"] + r["incremental"]["read_s"] + r["incremental"]["write_s"]  # noqa: E731
    engine = lambda r: r["full"]["engine_s"] + r["incremental"]["engine_s"]  # noqa: E731
    summary = {"people": args.people, "local_state_io_s": round(io(local), 2), "s3_state_io_s": round(io(remote), 2),
               "state_io_ratio": round(io(remote) / max(io(local), 1e-9), 2),
               "local_engine_s": round(engine(local), 2), "s3_engine_s": round(engine(remote), 2),
               "engine_ratio": round(engine(remote) / max(engine(local), 1e-9), 2)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
