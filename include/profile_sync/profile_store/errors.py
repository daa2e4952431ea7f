"""Errors of the profile store."""

from __future__ import annotations

from profile_sync.errors import TerminalError, TransientError


class ProfileStoreError(TerminalError):
    """The profile store refused a change or is not in the expected shape."""


class ProfileStoreUnavailableError(TransientError):
    """The profile store could not be reached."""
