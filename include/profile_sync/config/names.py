"""Connection names: one rule for directories and business systems."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
"""Lower-case letters, digits and ``_``, starting with a letter (names appear in task ids and state keys)."""


def check_connection_name(value: str) -> str:
    """``value`` if it is a valid connection name, else a ValueError saying what is allowed."""
    if not NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid connection name: use lower-case letters, digits and '_', "
            "starting with a letter"
        )
    return value
