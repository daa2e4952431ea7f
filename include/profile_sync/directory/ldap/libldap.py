"""The read path: searches over python-ldap, whose C extension decodes results with libldap.

Why python-ldap for reading: at 100,000 entries against slapd on this project's 2-core test machine,
python-ldap's paged search decodes 20–25k entries/s (libldap's BER decoding in C, one Python
``(dn, {attribute: [bytes]})`` tuple per entry), ldap3 3–4k/s (BER decoded in Python; 8k/s even when
only raw values are kept). ``tests/bench`` measures both against ``ldapsearch`` in the same run.

The :class:`LdapClient` keeps ldap3 for connecting, binding and TLS errors (its messages),
DirSync and writes; it opens this second connection, with the same address, TLS settings and
credentials, the first time it searches. Semantics are the ldap3 path's: paged always (the
paged-results control, ``page_size`` a page), aliases never dereferenced, referrals neither
followed nor returned, values raw bytes under lower-cased attribute names, and a search is complete
or raises: a result other than *success* on any page is an error, a connection lost mid-search
is transient.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Literal

import ldap
from ldap.controls import LDAPControl, SimplePagedResultsControl
from ldap3.core.results import RESULT_CODES

from profile_sync.directory.ldap.config import LdapConnectionSettings

RawAttributes = dict[str, list[bytes]]
Hit = tuple[str, RawAttributes]
Result = dict[str, Any]
"""An LDAP result as the client checks it: ``result`` (code), ``description``, ``message``."""

SCOPES = {"subtree": ldap.SCOPE_SUBTREE, "base": ldap.SCOPE_BASE, "level": ldap.SCOPE_ONELEVEL}
_PAGED = SimplePagedResultsControl.controlType
_RESPONSE_CONTROLS = {_PAGED: SimplePagedResultsControl}


class ConnectionLost(Exception):
    """The server could not be reached, went away, or did not answer in time (transient)."""


class SearchFailed(Exception):
    """The server answered a search with an error result (``result`` as the client checks it)."""

    def __init__(self, result: Result) -> None:
        self.result = result
        super().__init__(f"{result['description']} ({result['result']})")


class _LowerNames(dict):
    """Attribute name → lower case, computed once per name (a server sends a few names, 100,000 times)."""

    def __missing__(self, name: str) -> str:
        low = self[name] = name.lower()
        return low


def _result_of(exc: ldap.LDAPError) -> Result:
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    code = info.get("result", -1)
    # The result's name as ldap3 and RFC 4511 spell it (``noSuchObject``), whichever client read it.
    return {"result": code, "description": RESULT_CODES.get(code) or info.get("desc", type(exc).__name__),
            "message": (info.get("info") or "").strip()}


def _fail(exc: ldap.LDAPError) -> Exception:
    """python-ldap's exception → ConnectionLost (client-side failures: negative codes) or SearchFailed."""
    result = _result_of(exc)
    if isinstance(exc, (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR)) or result["result"] < 0:
        return ConnectionLost(f"{result['description']}{': ' + result['message'] if result['message'] else ''}")
    return SearchFailed(result)


class LibldapReader:
    """One bound python-ldap connection, used for searches only."""

    def __init__(self, settings: LdapConnectionSettings) -> None:
        self.settings = settings
        self._conn: ldap.ldapobject.SimpleLDAPObject | None = None
        self._ahead = False
        """A search reading ahead is in progress (see :meth:`search`)."""

    def open(self) -> None:
        s = self.settings
        scheme = "ldaps" if s.tls == "ldaps" else "ldap"
        host = f"[{s.host}]" if ":" in s.host else s.host
        conn = ldap.initialize(f"{scheme}://{host}:{s.port}")
        try:
            conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
            conn.set_option(ldap.OPT_REFERRALS, 0)
            conn.set_option(ldap.OPT_DEREF, ldap.DEREF_NEVER)
            conn.set_option(ldap.OPT_NETWORK_TIMEOUT, s.connect_timeout)
            conn.set_option(ldap.OPT_TIMEOUT, s.receive_timeout)
            if s.tls != "none":
                conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND if s.verify
                                else ldap.OPT_X_TLS_NEVER)
                if s.ca_file:
                    conn.set_option(ldap.OPT_X_TLS_CACERTFILE, s.ca_file)
                conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # last: applies the TLS options above
                if s.tls == "start_tls":
                    conn.start_tls_s()
            password = s.password.get_secret_value() if s.password else ""
            conn.simple_bind_s(s.bind_dn or "", password)
        except ldap.LDAPError as exc:
            _unbind(conn)
            raise _fail(exc) from None
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            _unbind(self._conn)
            self._conn = None

    @property
    def conn(self) -> ldap.ldapobject.SimpleLDAPObject:
        if self._conn is None:
            self.open()
        assert self._conn is not None
        return self._conn

    def search(self, base: str, search_filter: str, attributes: list[str],
               scope: Literal["subtree", "base", "level"] = "subtree",
               controls: list[tuple[str, bool, Any]] | None = None, paged: bool = True,
               ahead: bool = False) -> Iterator[list[Hit]]:
        """The entries matching, one list a page (complete or raising ConnectionLost / SearchFailed).

        ``ahead``: the next page is asked for before a page is handed over, so the server builds it while
        the caller decodes this one (they overlap on two cores: the full read's 16k → 25k entries/s against
        slapd, ``tests.bench.ldap_rates``). Nothing else may search on the connection meanwhile — slapd
        ends a paged search, silently, when another operation arrives while its next page is asked for —
        so another search raises until this one is over or closed. Without ``ahead`` the caller may read
        between pages (ranged retrieval does). A search left early is abandoned."""
        if self._ahead:
            raise RuntimeError(f"search of {base!r}: a search reading ahead is in progress on this connection "
                               "(nothing else may search meanwhile: finish or close it first)")
        extra = [LDAPControl(oid, criticality, value) for oid, criticality, value in controls or []]
        page = SimplePagedResultsControl(True, size=self.settings.page_size, cookie=b"") if paged else None
        timeout = self.settings.receive_timeout
        lower = _LowerNames().__getitem__

        def ask() -> int:
            return self.conn.search_ext(base, SCOPES[scope], search_filter, attributes,
                                        serverctrls=extra + ([page] if page else []))

        ahead = ahead and page is not None
        msgid: int | None = None
        self._ahead = ahead
        try:
            msgid = self._call(ask)
            while msgid is not None:
                _, data, _, response = self._call(lambda: self.conn.result3(
                    msgid, all=1, timeout=timeout, resp_ctrl_classes=_RESPONSE_CONTROLS))
                msgid = None
                cookie = next((c.cookie for c in response if c.controlType == _PAGED), b"") if page else b""
                if cookie:
                    page.cookie = cookie
                    if ahead:
                        msgid = self._call(ask)
                # The whole page (and its cookie) is in hand before the caller sees it.
                yield [(dn, dict(zip(map(lower, values), values.values()))) for dn, values in data if dn is not None]
                if cookie and not ahead:
                    msgid = self._call(ask)
        finally:
            self._ahead = False
            if msgid is not None and self._conn is not None:  # left early: the server can drop the next page
                try:
                    self._conn.abandon_ext(msgid)
                except ldap.LDAPError:
                    pass

    def _call(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` with python-ldap's failures as ConnectionLost / SearchFailed (a lost connection is closed)."""
        try:
            return fn()
        except ldap.LDAPError as exc:
            if isinstance(exc, (ldap.SERVER_DOWN, ldap.TIMEOUT)):
                self.close()
            raise _fail(exc) from None


def _unbind(conn: ldap.ldapobject.SimpleLDAPObject) -> None:
    try:
        conn.unbind_ext_s()
    except ldap.LDAPError:
        pass
