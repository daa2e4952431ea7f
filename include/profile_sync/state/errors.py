"""Errors of the state store."""

from __future__ import annotations

from profile_sync.errors import TerminalError, TransientError


class StateError(TerminalError):
    """The state store is unusable as configured or is inconsistent."""


class StateUnavailableError(TransientError):
    """The state store or the coordination database did not answer (or its disk is full); retry later."""


class StateConflictError(StateError):
    """Another run committed state since this run started; this run's state cannot be promoted."""


class LeaseHeldError(TransientError):
    """Another synchronization holds the lease."""

    def __init__(self, owner: str, expires_at: str | None) -> None:
        self.owner = owner
        self.expires_at = expires_at
        super().__init__(f"the state store is leased by run {owner!r} until {expires_at}")


class LeaseLostError(TerminalError):
    """This run's lease was taken over (it was considered dead): it must not write anything more."""

    def __init__(self, owner: str, holder: str | None) -> None:
        self.owner = owner
        self.holder = holder
        super().__init__(
            f"run {owner!r} no longer holds the state-store lease (now held by {holder!r}): it was considered "
            "dead and taken over; nothing more is written by this run — start it again if it is still needed")
