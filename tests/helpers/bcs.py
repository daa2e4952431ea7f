"""Business systems for tests: an HR table in a real PostgreSQL database, and a statement counter."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import Engine, create_engine, event, text

HR_COLUMNS = {
    "login": "text", "employee_number": "text", "employee_no": "integer", "hired": "text", "start_date": "date",
    "cost_center": "text", "remote": "text", "certification": "text",
}
"""The columns of ``hr.employees``: typed ``employee_no`` and ``start_date``, the others text (as HR views often are)."""


class HrTable:
    """``hr.employees`` in the PostgreSQL database at ``url`` (the schema is created, the rows replaced)."""

    def __init__(self, url: str, table: str = "employees") -> None:
        self.url = url
        self.table = f"hr.{table}"
        self.engine: Engine = create_engine(url)
        with self.engine.begin() as conn:
            conn.execute(text("CREATE SCHEMA IF NOT EXISTS hr"))
            cols = ", ".join(f"{c} {t}" for c, t in HR_COLUMNS.items())
            conn.execute(text(f"DROP TABLE IF EXISTS {self.table}"))
            conn.execute(text(f"CREATE TABLE {self.table} ({cols})"))

    def replace(self, rows: list[dict[str, Any]]) -> None:
        """Make the table hold exactly ``rows`` (missing columns are NULL)."""
        with self.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {self.table}"))
            if rows:
                full = [{c: r.get(c) for c in HR_COLUMNS} for r in rows]
                conn.execute(text(f"INSERT INTO {self.table} ({', '.join(HR_COLUMNS)}) "
                                  f"VALUES ({', '.join(':' + c for c in HR_COLUMNS)})"), full)

    def rows(self) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {self.table} ORDER BY login NULLS FIRST, "
                                                        "certification NULLS FIRST"))]

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def statements_against(fragment: str) -> Iterator[list[str]]:
    """Every SQL statement any engine of this process sends that mentions ``fragment``."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if fragment in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)
