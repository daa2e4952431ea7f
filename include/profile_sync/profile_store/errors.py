"""Errors of the profile store, and the one place that turns database errors into them.

A database error is *terminal* when retrying the same step cannot help — the login is refused,
the database does not exist, a row breaks a constraint — and *transient* when the same call may
succeed later (the server does not answer, restarts, has no free connection, SQLite is locked).
Messages say what to fix, name the database with its password masked, and never show a password.
Business systems classify their database errors here too (``bcs/sources.py``).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

from profile_sync.config.urls import mask_url, mask_urls_in
from profile_sync.errors import ProfileSyncError, TerminalError, TransientError


class ProfileStoreError(TerminalError):
    """The profile store refused a change or is not in the expected shape."""


class ProfileStoreUnavailableError(TransientError):
    """The profile store could not be reached."""


# (pattern in the driver's message or SQLSTATE, what it means and what to fix); the first match wins.
_LOGIN = "the database refused the login ({detail}): fix the user name and password of {who}"
_TERMINAL: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"password authentication failed|authentication failed for user|28P01", re.I), _LOGIN),
    (re.compile(r"no password supplied", re.I),
     "the database asks for a password and none was given ({detail}): set it on {who}"),
    (re.compile(r'role "[^"]*" does not exist|no pg_hba\.conf entry|28000', re.I),
     "the database does not accept this user from this host ({detail}): create the user or allow it in "
     "pg_hba.conf, or fix the login of {who}"),
    (re.compile(r'database "[^"]*" does not exist|3D000', re.I),
     "the database does not exist ({detail}): create it, or fix the database name (the URL's path, the "
     "Connection's schema field)"),
    (re.compile(r"SSL (is not enabled|off)|server does not support SSL|sslmode", re.I),
     "the TLS settings do not match the server ({detail}): fix sslmode in the Connection's extras"),
    (re.compile(r"unable to open database file", re.I),
     "the SQLite file cannot be opened ({detail}): does its folder exist, and may this user write there?"),
    (re.compile(r"attempt to write a readonly database", re.I),
     "the SQLite file is read-only ({detail}): let this user write the file and its folder"),
    (re.compile(r"permission denied|must be owner of|42501", re.I),
     "the database user lacks a privilege ({detail}): grant it (Profile Sync reads, writes and, on the first "
     "export or a new custom property, creates and alters its tables)"),
]
_TRANSIENT = re.compile(
    r"could not connect|connection refused|timeout expired|timed out|server closed the connection|"
    r"terminating connection|the database system is (starting up|shutting down|in recovery mode)|"
    r"too many (connections|clients)|connection to server .* failed|could not translate host name|"
    r"database is locked|SSL SYSCALL error|57P0[1-3]|53300|08\d\d\d", re.I)


def _driver_error(exc: BaseException) -> BaseException:
    """The DBAPI exception under a SQLAlchemy one (psycopg2 raises its own from a raw ``COPY``)."""
    return getattr(exc, "orig", None) or exc


def _first_lines(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    return re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)


def _unique_violation(orig: BaseException) -> str | None:
    """What a unique/primary-key violation says, if ``orig`` is one."""
    code = getattr(orig, "pgcode", None)
    text = str(orig)
    if code == "23505" or "UNIQUE constraint failed" in text:
        diag = getattr(orig, "diag", None)
        detail = getattr(diag, "message_detail", None) or ""
        constraint = getattr(diag, "constraint_name", None)
        what = f"constraint {constraint!r}" if constraint else _first_lines(orig)
        return f"{what}{': ' + detail if detail else ''}"
    return None


def is_database_error(exc: BaseException) -> bool:
    """A SQLAlchemy error, or a DBAPI (driver) error raised outside SQLAlchemy."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("psycopg2", "sqlite3", "psycopg"))


PROFILE_STORE_CONNECTION = "the profile store's Airflow Connection (profile_store.conn_id)"


def database_problem(exc: BaseException, url: str | None = None,
                     who: str = PROFILE_STORE_CONNECTION) -> tuple[bool, str]:
    """(terminal?, what happened and what to fix) for a database error; passwords masked.

    ``who``: where the login is set, for the message ("the profile store's Airflow Connection …").
    """
    from sqlalchemy.exc import IntegrityError, OperationalError

    orig = _driver_error(exc)
    detail = mask_urls_in(_first_lines(orig), url)
    code = getattr(orig, "pgcode", None) or ""
    unique = _unique_violation(orig)
    if unique is not None:
        return True, (f"a row already in the database holds a value that must be unique — {mask_urls_in(unique, url)}. "
                      "Someone wrote it after this run read the profile store, or the store was edited by hand: "
                      "start a new synchronization (it reads the store again); if it fails the same way, fix or "
                      "remove that row")
    if isinstance(exc, IntegrityError) or code.startswith("23"):
        return True, f"a row breaks a constraint of the database ({detail})"
    probe = f"{detail} {code}"
    for pattern, meaning in _TERMINAL:
        if pattern.search(probe):
            return True, meaning.format(detail=detail, who=who)
    if _TRANSIENT.search(probe):
        return False, f"the database did not answer ({detail}); the step is retried"
    if isinstance(exc, OperationalError):  # not known to be permanent: give it another chance
        return False, detail
    return True, detail


def where(url: str | None) -> str:
    """How a message names the profile store: its URL, password masked."""
    return f"profile store {mask_url(url)}" if url else "profile store"


@contextmanager
def profile_store_errors(url: str | None, action: str, *, nothing_written: bool = False) -> Iterator[None]:
    """Turn database errors raised during ``action`` ("the export", "the read") into the profile store's errors."""
    try:
        yield
    except ProfileSyncError:
        raise
    except Exception as exc:
        if not is_database_error(exc):
            raise
        terminal, text = database_problem(exc, url)
        written = " (nothing was written)" if nothing_written else ""
        if terminal:
            raise ProfileStoreError(f"{where(url)} refused {action}{written}: {text}") from exc
        raise ProfileStoreUnavailableError(f"{where(url)} unavailable during {action}{written}: {text}") from exc
