"""Error hierarchy shared by every stage.

Each stage raises a subclass of :class:`ProfileSyncError`. Terminal errors mean
"retrying will not help" (bad configuration, bad data, a failed gate); transient
errors mean "the same call may succeed later" (a server that does not answer).
Messages name the object and the problem; structured fields keep the evidence.
"""

from __future__ import annotations


class ProfileSyncError(Exception):
    """Base of every error raised by the engine."""

    terminal: bool = True


class TerminalError(ProfileSyncError):
    """Retrying will not help: fix configuration or data first."""

    terminal = True


class TransientError(ProfileSyncError):
    """A passing fault (network, lock); the same step may succeed on retry."""

    terminal = False


class ValueErrorWithKnownValues(TerminalError, ValueError):
    """A value outside a closed vocabulary; the message lists the known values."""

    def __init__(self, what: str, value: object, known: list[str] | tuple[str, ...]) -> None:
        self.what = what
        self.value = value
        self.known = list(known)
        super().__init__(f"unknown {what} {value!r}; known values: {', '.join(map(str, self.known))}")
