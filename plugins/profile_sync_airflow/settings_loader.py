"""Load ``airflow_settings.yaml`` (astro CLI format) into the Airflow metadata database.

Usage: ``python -m profile_sync_airflow.settings_loader airflow_settings.yaml``.
Creates or updates pools, variables and connections; idempotent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def load(path: Path) -> dict[str, int]:
    from airflow.models import Connection, Variable
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    doc = (yaml.safe_load(path.read_text()) or {}).get("airflow") or {}
    counts = {"pools": 0, "variables": 0, "connections": 0}
    with create_session() as session:
        for pool in doc.get("pools") or []:
            Pool.create_or_update_pool(
                name=pool["pool_name"], slots=int(pool["pool_slot"]),
                description=pool.get("pool_description") or "", include_deferred=False, session=session)
            counts["pools"] += 1
        for var in doc.get("variables") or []:
            Variable.set(var["variable_name"], var.get("variable_value"), session=session)
            counts["variables"] += 1
        for c in doc.get("connections") or []:
            extra = c.get("conn_extra")
            existing = session.query(Connection).filter(Connection.conn_id == c["conn_id"]).one_or_none()
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(Connection(
                conn_id=c["conn_id"], conn_type=c.get("conn_type"), host=c.get("conn_host"),
                schema=c.get("conn_schema"), login=c.get("conn_login"), password=c.get("conn_password"),
                port=c.get("conn_port"),
                extra=json.dumps(extra) if isinstance(extra, dict) else extra))
            counts["connections"] += 1
    return counts


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "airflow_settings.yaml")
    counts = load(path)
    print(f"loaded {path}: {counts['pools']} pool(s), {counts['variables']} variable(s), "
          f"{counts['connections']} connection(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
