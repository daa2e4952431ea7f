"""Errors of the state store."""

from __future__ import annotations

from profile_sync.errors import TerminalError, TransientError


class StateError(TerminalError):
    """The state store is unusable as configured or is inconsistent."""


class StateConflictError(StateError):
    """Another run committed state since this run started; this run's state cannot be promoted."""


class LeaseHeldError(TransientError):
    """Another synchronization holds the lease."""

    def __init__(self, owner: str, expires_at: str) -> None:
        self.owner = owner
        self.expires_at = expires_at
        super().__init__(f"the state store is leased by run {owner!r} until {expires_at}")
