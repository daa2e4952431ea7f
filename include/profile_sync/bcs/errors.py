"""Errors of the business-system steps."""

from __future__ import annotations

from profile_sync.errors import TerminalError, TransientError


class BcsError(TerminalError):
    """A business system is not usable as configured (missing column, unreadable file, bad query)."""

    def __init__(self, connection: str, problem: str) -> None:
        self.connection = connection
        self.problem = problem
        super().__init__(f"business system {connection!r}: {problem}")


class BcsUnavailableError(TransientError):
    """A business system could not be reached (the same step may succeed on retry)."""

    def __init__(self, connection: str, problem: str) -> None:
        self.connection = connection
        self.problem = problem
        super().__init__(f"business system {connection!r} unavailable: {problem}")
