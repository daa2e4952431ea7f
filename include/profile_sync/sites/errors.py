"""Errors of the push to sites: they name the site and what to fix."""

from __future__ import annotations

from profile_sync.errors import TerminalError, TransientError


class SiteError(TerminalError):
    """A site is not usable as configured (its list has no ``account_name``, the database refused the write)."""

    def __init__(self, site: str, problem: str) -> None:
        self.site = site
        self.problem = problem
        super().__init__(f"site {site!r}: {problem}")


class SiteUnavailableError(TransientError):
    """A site's database could not be reached, or went away during the push (nothing was written; retried)."""

    def __init__(self, site: str, problem: str) -> None:
        self.site = site
        self.problem = problem
        super().__init__(f"site {site!r} unavailable (nothing was written): {problem}")


class SiteConflictError(TransientError):
    """Another push to the same site committed while this one was planning (retried with fresh reads)."""

    def __init__(self, site: str) -> None:
        self.site = site
        super().__init__(f"site {site!r}: its watermark moved while this push was planning (another push to the "
                         "same site committed); nothing was written")
