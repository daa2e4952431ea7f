"""One synchronization in its own process, as an Airflow worker would run it (for the fault-table tests).

    python -m tests.helpers.run_cli CONFIG PROJECT_ROOT DAG_ID RUN_ID MODE [WAIT_SECONDS]

Connections come as JSON in ``PROFILE_SYNC_TEST_CONNECTIONS`` (conn_id → URI). Waits for the lease like
the ``start_run`` sensor (polling, up to WAIT_SECONDS), then runs every step with a fresh context, retrying
a transient error as the DAG's tasks do (``run_sync(retries=True)``).
``PROFILE_SYNC_FAULT`` (profile_sync/faults.py) makes the process SIGKILL itself at that point.
Exit 0: success; 1: the run failed (the error is printed); 3: the lease never came.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from profile_sync.config.loader import load_settings
    from profile_sync.run.context import ConnectionInfo, RunContext
    from profile_sync.run.local import run_sync
    from profile_sync.state.errors import LeaseHeldError

    config, root, dag_id, run_id, mode = argv[:5]
    wait = float(argv[5]) if len(argv) > 5 else 0.0
    connections = json.loads(os.environ.get("PROFILE_SYNC_TEST_CONNECTIONS", "{}"))
    ctx = RunContext(run_id=run_id, settings=load_settings(Path(config)), project_root=Path(root), dag_id=dag_id,
                     requested_mode=mode,
                     resolve_connection=lambda c: ConnectionInfo(conn_id=c, uri=connections[c]))
    deadline = time.monotonic() + wait
    while True:
        try:
            out = run_sync(ctx, retries=True)
            break
        except LeaseHeldError:
            if time.monotonic() >= deadline:
                return 3
            time.sleep(0.2)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    print(json.dumps({k: v.get("status") for k, v in out.items() if isinstance(v, dict)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
