"""Database URLs: the one place that reads them, masks their password and maps Airflow's spelling.

* :func:`sqlalchemy_url` — the URL SQLAlchemy gets, for the profile store and business systems alike.
  A Connection made in Airflow's UI (type *Postgres*) comes back from ``Connection.get_uri()`` as
  ``postgres://…``, which SQLAlchemy refuses (``Can't load plugin: sqlalchemy.dialects:postgres``);
  ``postgresql://`` would pick psycopg 3, which the project does not ship. Both become
  ``postgresql+psycopg2://``.
* :func:`has_password` — URLs in the configuration file must not hold one (it belongs in an
  Airflow Connection): ``user:secret@`` or a ``password=`` query parameter (libpq reads both).
* :func:`mask_url` — what may be shown of a URL anywhere (reports, run history, logs, errors):
  the password replaced by ``***``.
"""

from __future__ import annotations

import re

MASK = "***"

_SCHEME = re.compile(r"^(postgres|postgresql)://", re.I)
# The password of "scheme://user:password@host": everything between "user:" and the last "@" goes
# (masking too much is harmless; showing a password is not).
_USERINFO = re.compile(r"^(.*?://[^:/@?#]*:)(.+)@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.I)


def sqlalchemy_url(url: str) -> str:
    """``url`` as SQLAlchemy accepts it with the drivers this project installs (see module docstring)."""
    return _SCHEME.sub("postgresql+psycopg2://", url, count=1)


def _parse(url: str):  # noqa: ANN202
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def has_password(url: str) -> bool:
    """Does ``url`` carry a password (``user:secret@host`` or ``?password=``)?"""
    parsed = _parse(url)
    if parsed is None:
        return bool(_USERINFO.match(url) or _QUERY_PASSWORD.search(url))
    return bool(parsed.password) or any(k.lower() == "password" for k in parsed.query)


def mask_url(url: str | None) -> str:
    """``url`` with its password (in the user part or the query) replaced by ``***``; fit to show anywhere.

    The rest of the URL is kept as written (not re-encoded), so it still reads as configured.
    """
    if not url:
        return url or ""
    if not has_password(url):
        return url
    return _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}@", url, count=1))


def mask_urls_in(text: str, *urls: str | None) -> str:
    """``text`` with every password of ``urls`` (as given, and as SQLAlchemy spells it) masked."""
    for url in urls:
        if not url:
            continue
        parsed = _parse(url)
        secrets = {parsed.password} if parsed is not None and parsed.password else set()
        if parsed is not None:
            secrets |= {str(v) for k, v in parsed.query.items() if k.lower() == "password"}
        for secret in sorted((s for s in secrets if s), key=len, reverse=True):
            text = text.replace(secret, MASK)
        text = text.replace(url, mask_url(url))
    return text
