"""Nothing the status page shows carries a secret: passwords in URLs are masked, secret-named fields hidden.

The engine keeps secrets out of its state and history already (they come from Airflow Connections and
are never logged); this is the page's second line: every document it returns goes through
:func:`redact` on the way out.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_URL_CREDENTIALS = re.compile(r"(?P<prefix>\b[a-z][a-z0-9+.\-]*://[^:/@\s]*):(?P<secret>[^@\s/]+)@", re.IGNORECASE)
_SECRET_KEY = re.compile(r"pass(word|wd)?$|secret|token|credential|private[_-]?key|api[_-]?key|cookie|^extra$",
                         re.IGNORECASE)


def mask_url(text: str) -> str:
    """``scheme://user:password@host`` → ``scheme://user:***@host`` (anywhere in ``text``)."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('prefix')}:{MASK}@", text)


def is_secret_key(key: str) -> bool:
    """A field whose value is a secret by its name (password, secret, token, cookie, a Connection's extra)."""
    return bool(_SECRET_KEY.search(key))


def redact(value: Any) -> Any:
    """``value`` with every URL password masked and every secret-named field's value replaced by ``***``."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "", [], {}) else redact(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
