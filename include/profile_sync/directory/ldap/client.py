"""The one adapter around the LDAP libraries: connect (with retries), paged search, ranged retrieval,
DirSync, modify.

Everything the engine does with an LDAP server goes through :class:`LdapClient`; library objects and
exceptions never leave it. ldap3 connects, binds (its TLS and bind errors), runs DirSync and writes;
searches and reads go through python-ldap (:mod:`.libldap`: libldap decodes in C, several times
faster), on a second connection with the same settings, opened at the first search.
Failures become typed errors:

* :class:`DirectoryUnavailableError` (transient): the server did not answer, died mid-search, timed
  out, or said busy/unavailable; Airflow retries the step.
* :class:`DirectoryError` (terminal): wrong password, untrusted certificate, a base DN that does not
  exist, missing rights, a size limit that would truncate the read. Retrying will not help.

A search is complete or it raises: a result other than *success* on any page is an error, so a
read that fails part-way never looks like a small directory (which would become a mass delete).
"""

from __future__ import annotations

import logging
import math
import os
import re
import ssl
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, NamedTuple, TypeVar

import ldap3
from ldap3.core import exceptions as lx

from profile_sync.directory.errors import DirectoryError, DirectoryUnavailableError
from profile_sync.directory.ldap.config import LdapConnectionSettings
from profile_sync.directory.ldap.libldap import ConnectionLost, Hit, LibldapReader, SearchFailed

log = logging.getLogger(__name__)

RawAttributes = dict[str, list[bytes]]
"""Attribute values as the server sent them, names lower-cased."""

PAGED_RESULTS = "1.2.840.113556.1.4.319"
DIRSYNC = "1.2.840.113556.1.4.841"
SHOW_DELETED = "1.2.840.113556.1.4.417"

_TRANSIENT_RESULTS = {3: "timeLimitExceeded", 51: "busy", 52: "unavailable", 80: "other"}
_T = TypeVar("_T")


class SearchHit(NamedTuple):
    """One entry of a search: DN and raw attribute values (names lower case, ranged names kept)."""

    dn: str
    attributes: RawAttributes


@dataclass(frozen=True)
class WriteOutcome:
    """The result of one modify: ``ok``, or the server's refusal (code, name, diagnostic message)."""

    dn: str
    ok: bool
    code: int = 0
    description: str = "success"
    message: str = ""

    @property
    def reason(self) -> str:
        text = f"{self.description} ({self.code})"
        return f"{text}: {self.message}" if self.message else text


class LdapClient:
    """A bound connection to one LDAP server. ``with LdapClient(settings) as client: ...``"""

    def __init__(self, settings: LdapConnectionSettings) -> None:
        self.settings = settings
        self._conn: ldap3.Connection | None = None
        self._reader: LibldapReader | None = None

    # -- connection ---------------------------------------------------------------------
    def __enter__(self) -> "LdapClient":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unavailable(self, what: str, exc: BaseException | str) -> DirectoryUnavailableError:
        return DirectoryUnavailableError(
            f"directory {self.settings.connection!r}: {self.settings.url} {what}: {exc}")

    def _error(self, message: str, dn: str | None = None) -> DirectoryError:
        return DirectoryError(self.settings.connection, message, dn=dn)

    def _tls(self) -> ldap3.Tls | None:
        s = self.settings
        if s.tls == "none":
            return None
        if s.ca_file and not os.path.isfile(s.ca_file):
            raise self._error(f"the 'ca_file' extra of Airflow Connection {s.conn_id!r} names {s.ca_file!r}, which is "
                              "not a file on this worker: put the CA's PEM file there, or correct the path")
        try:
            return ldap3.Tls(validate=ssl.CERT_REQUIRED if s.verify else ssl.CERT_NONE, ca_certs_file=s.ca_file or None)
        except lx.LDAPSSLConfigurationError as exc:
            raise self._error(f"the TLS settings of Airflow Connection {s.conn_id!r} cannot be used: {exc}") from None

    def open(self) -> None:
        """Connect, StartTLS when configured, and bind; transient failures are retried (``retries``)."""
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        s = self.settings
        for attempt in Retrying(stop=stop_after_attempt(s.retries), reraise=True,
                                wait=wait_exponential(multiplier=0.5, min=0.5, max=10),
                                retry=retry_if_exception_type(DirectoryUnavailableError)):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.warning("directory %r: connecting to %s again (attempt %d of %d)", s.connection,
                                s.url, attempt.retry_state.attempt_number, s.retries)
                self._conn = self._open_once()

    def _open_once(self) -> ldap3.Connection:
        s = self.settings
        server = ldap3.Server(s.host, port=s.port, use_ssl=s.tls == "ldaps", tls=self._tls(),
                              get_info=ldap3.NONE, connect_timeout=s.connect_timeout)
        conn = ldap3.Connection(
            server, user=s.bind_dn, password=s.password.get_secret_value() if s.password else None,
            authentication=ldap3.SIMPLE if s.bind_dn else ldap3.ANONYMOUS, auto_bind=ldap3.AUTO_BIND_NONE,
            auto_referrals=False, auto_range=False, return_empty_attributes=False, check_names=False,
            raise_exceptions=False, receive_timeout=max(1, math.ceil(s.receive_timeout)))  # ldap3 packs it as an int
        try:
            conn.open()
            if s.tls == "start_tls" and not conn.start_tls():
                raise self._error(f"StartTLS refused by {s.url}: {conn.result.get('description')} "
                                  f"{conn.result.get('message') or ''}".strip())
            if not conn.bind():
                raise self._bind_error(conn.result)
        except DirectoryError:
            _quietly_unbind(conn)
            raise
        except (lx.LDAPCertificateError, lx.LDAPSSLConfigurationError, lx.LDAPStartTLSError) as exc:
            _quietly_unbind(conn)
            raise self._tls_error(exc) from None
        except (lx.LDAPExceptionError, OSError) as exc:
            _quietly_unbind(conn)
            if _is_certificate_problem(exc):
                raise self._tls_error(exc) from None
            raise self._unavailable("did not answer", _describe(exc)) from None
        return conn

    def _tls_error(self, exc: BaseException) -> DirectoryError:
        reason, hint = _tls_problem(exc, self.settings.host, self.settings.ca_file, self.settings.verify)
        return self._error(f"TLS with {self.settings.url} failed: {reason}; {hint}")

    def _bind_error(self, result: dict[str, Any]) -> DirectoryError | DirectoryUnavailableError:
        code = result.get("result")
        text = f"{result.get('description')} ({code})" + (f": {result['message']}" if result.get("message") else "")
        if code in _TRANSIENT_RESULTS:
            return self._unavailable("refused the bind for now", text)
        if code == 49:
            return self._error(f"bind as {self.settings.bind_dn!r} refused: invalid credentials — check the login "
                               f"and password of Airflow Connection {self.settings.conn_id!r} ({text})")
        if code in (8, 13):
            # 8 strongerAuthRequired: AD with "LDAP server signing requirements" (or Samba with "ldap server
            # require strong auth") refuses simple binds on plain LDAP; 13 confidentialityRequired: slapd's
            # "security simple_bind=…".
            if self.settings.tls == "none":
                return self._error(f"bind refused: {text}; the server only accepts a simple bind over an encrypted "
                                   "connection — set the 'tls' extra of Airflow Connection "
                                   f"{self.settings.conn_id!r} to 'ldaps' or 'start_tls' (and 'ca_file' to the "
                                   "CA that signed the server's certificate)")
            return self._error(f"bind refused over {self.settings.tls}: {text}; the server wants a stronger bind "
                               "than a simple one (SASL signing, Kerberos or a client certificate), which Profile "
                               "Sync does not do: ask for simple binds over TLS to be allowed for this account")
        return self._error(f"bind as {self.settings.bind_dn!r} refused: {text}")

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._conn is not None:
            _quietly_unbind(self._conn)
            self._conn = None

    @property
    def conn(self) -> ldap3.Connection:
        if self._conn is None:
            raise RuntimeError("LdapClient is not open")
        return self._conn

    def _call(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run an ldap3 operation; communication failures become DirectoryUnavailableError."""
        try:
            return fn(*args, **kwargs)
        except (lx.LDAPCommunicationError, lx.LDAPResponseTimeoutError, lx.LDAPSocketOpenError,
                lx.LDAPSessionTerminatedByServerError, OSError) as exc:
            self.close()
            raise self._unavailable(f"failed during {what}", _describe(exc)) from None

    def _check(self, what: str, base: str | None = None, result: dict[str, Any] | None = None) -> dict[str, Any]:
        """Raise the typed error for ``result`` (default: ldap3's last) unless it is success."""
        result = self.conn.result if result is None else result
        code = result.get("result")
        if code == 0:
            return result
        text = f"{result.get('description')} ({code})" + (f": {result['message']}" if result.get("message") else "")
        if code in _TRANSIENT_RESULTS:
            raise self._unavailable(f"could not complete {what}", text)
        if code == 32:
            who = f"the account {self.settings.bind_dn!r}" if self.settings.bind_dn else "an anonymous bind"
            raise self._error(f"{what}: {base!r} does not exist, or {who} may not see it ({text}) — check the "
                              "container in the configuration and the account's read rights", dn=base)
        if code == 4:
            raise self._error(f"{what} stopped at the server's size limit ({text}); an incomplete read is never "
                              "imported — raise the limit for this account or lower 'page_size'", dn=base)
        raise self._error(f"{what} failed: {text}", dn=base)

    # -- reading ---------------------------------------------------------------------------
    def root_dse(self, attributes: list[str]) -> RawAttributes:
        """The rootDSE's ``attributes`` (names lower case)."""
        self._call("rootDSE read", self.conn.search, "", "(objectClass=*)", search_scope=ldap3.BASE,
                   attributes=attributes)
        self._check("rootDSE read")
        entries = [r for r in self.conn.response if r.get("type") == "searchResEntry"]
        return _lower(entries[0]["raw_attributes"]) if entries else {}

    def _pages(self, what: str, base: str, search_filter: str, attributes: list[str],
               scope: Literal["subtree", "base", "level"], controls: list[tuple[str, bool, Any]] | None,
               paged: bool, absent_ok: bool = False, ahead: bool = False) -> Iterator[list[Hit]]:
        """python-ldap's pages, its failures as typed errors (see :meth:`_check`); with ``absent_ok`` a
        base that does not exist gives no pages; ``ahead``: see ``LibldapReader.search``."""
        if self._reader is None:
            self.conn  # noqa: B018  (ldap3 connected and bound: its errors are the clearer ones)
            self._reader = LibldapReader(self.settings)
        pages = self._reader.search(base, search_filter, attributes, scope, controls, paged, ahead)
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except ConnectionLost as exc:
                self.close()
                raise self._unavailable(f"failed during {what}", exc) from None
            except SearchFailed as exc:
                if absent_ok and exc.result["result"] == 32:
                    return
                self._check(what, base, exc.result)
                raise  # _check raises for every failure; a SearchFailed is never a success
            yield page

    def search_pages(self, base: str, search_filter: str, attributes: list[str],
                     scope: Literal["subtree", "base", "level"] = "subtree",
                     controls: list[tuple[str, bool, Any]] | None = None, paged: bool = True,
                     ahead: bool = False) -> Iterator[list[Hit]]:
        """Every entry matching, a page at a time as ``(dn, attributes)`` tuples (the full read's fast path).

        ``ahead``: the next page is asked for while the caller works on one; nothing else may search on this
        client until the search is over or closed (``LibldapReader.search``)."""
        return self._pages(f"search of {base!r}", base, search_filter, attributes, scope, controls, paged,
                           ahead=ahead)

    def search(self, base: str, search_filter: str, attributes: list[str],
               scope: Literal["subtree", "base", "level"] = "subtree",
               controls: list[tuple[str, bool, Any]] | None = None, paged: bool = True) -> Iterator[SearchHit]:
        """Every entry matching: paged (the paged-results control, ``page_size`` a page), complete or raising."""
        for page in self.search_pages(base, search_filter, attributes, scope, controls, paged):
            yield from map(SearchHit._make, page)

    def read(self, dn: str, attributes: list[str],
             controls: list[tuple[str, bool, Any]] | None = None) -> RawAttributes | None:
        """One object's attributes (None when it does not exist)."""
        for page in self._pages(f"read of {dn!r}", dn, "(objectClass=*)", attributes, "base", controls, False,
                                absent_ok=True):
            return page[0][1] if page else None
        return None

    def complete_ranges(self, dn: str, attributes: RawAttributes) -> RawAttributes:
        """Merge ranged values (``member;range=0-1499`` …) under the plain name, fetching the rest.

        Follows the upper bound the *server* returned (it may cap a requested range: AD's
        MaxValRange), asking for ``range_size`` more values each time, until a range ends in ``*``.
        """
        ranged = [k for k in attributes if ";range=" in k]
        if not ranged:
            return attributes
        out = {k: v for k, v in attributes.items() if ";range=" not in k}
        step = self.settings.range_size
        for key in ranged:
            name, _, bounds = key.partition(";range=")
            values = out.setdefault(name, [])
            values.extend(attributes[key])
            high = bounds.partition("-")[2]
            while high != "*":
                start = int(high) + 1
                got = self.read(dn, [f"{name};range={start}-{start + step - 1}"])
                if got is None:
                    raise self._unavailable("lost an object during ranged retrieval",
                                            f"{dn!r} disappeared; the step can be retried")
                keys = [k for k in got if k.startswith(name + ";range=")]
                if not keys:  # values removed meanwhile: nothing more to read
                    break
                values.extend(got[keys[0]])
                high = keys[0].partition(";range=")[2].partition("-")[2]
        return out

    def dir_sync(self, base: str, search_filter: str, attributes: list[str], cookie: bytes | None,
                 object_security: bool) -> tuple[list[SearchHit], bytes]:
        """A complete DirSync (looping while the server has more): the hits and the new cookie."""
        from ldap3.protocol.microsoft import dir_sync_control, show_deleted_control

        hits: list[SearchHit] = []
        more = True
        what = f"DirSync of {base!r}"
        while more:
            control = dir_sync_control(criticality=True, object_security=object_security, ancestors_first=True,
                                       public_data_only=False, incremental_values=False,
                                       max_length=2147483647, cookie=cookie)
            self._call(what, self.conn.search, base, search_filter, search_scope=ldap3.SUBTREE,
                       dereference_aliases=ldap3.DEREF_NEVER, attributes=attributes,
                       controls=[control, show_deleted_control(criticality=False)])
            result = self.conn.result
            if result.get("result") != 0:
                raise DirSyncRefused(result.get("result") or -1, str(result.get("description")),
                                     str(result.get("message") or ""))
            value = ((result.get("controls") or {}).get(DIRSYNC) or {}).get("value")
            if value is None:
                raise DirSyncRefused(-1, "no DirSync control in the answer", "the server ignored DirSync")
            hits.extend(SearchHit(r["dn"], _lower(r["raw_attributes"]))
                        for r in self.conn.response or [] if r.get("type") == "searchResEntry")
            more = bool(value.get("more_results"))
            cookie = value.get("cookie")
        return hits, cookie or b""

    # -- writing ---------------------------------------------------------------------------
    def replace(self, dn: str, values: dict[str, list[bytes]]) -> WriteOutcome:
        """Replace the values of ``values``' attributes on one object (an empty list removes them).

        A refusal (access, constraint, syntax, no such object) is returned, not raised: the caller
        reports it for that object and goes on. Losing the server raises DirectoryUnavailableError.
        """
        changes = {a: [(ldap3.MODIFY_REPLACE, v)] for a, v in values.items()}
        self._call(f"modify of {dn!r}", self.conn.modify, dn, changes)
        r = self.conn.result
        code = r.get("result") or 0
        if code in _TRANSIENT_RESULTS:
            raise self._unavailable(f"refused a modify of {dn!r} for now", r.get("description"))
        return WriteOutcome(dn, code == 0, code, str(r.get("description")), str(r.get("message") or "").strip())


class DirSyncRefused(Exception):
    """The server refused a DirSync request (no right, bad cookie, not a naming context)."""

    def __init__(self, code: int, description: str, message: str) -> None:
        self.code = code
        self.description = description
        self.message = message
        super().__init__(f"{description} ({code}){': ' + message if message else ''}")


def _quietly_unbind(conn: ldap3.Connection) -> None:
    """Unbind and close; a connection that is already broken just goes."""
    try:
        conn.unbind()
    except (lx.LDAPException, OSError):
        pass


def _lower(raw: dict[str, Any]) -> RawAttributes:
    return {k.lower(): vals for k, vals in raw.items()}


_REPR_WRAPPING = re.compile(r"""^\(+["'](.*)["'],?\)+$""", re.S)
_CERT_DICT = re.compile(r"certificate (\{.*\}) doesn't match any name in (\[.*?\])", re.S)
_SAN = re.compile(r"\('(DNS|IP Address)', '([^']*)'\)")
_VERIFY = re.compile(r"certificate verify failed: ([^(]*?)\s*(?:\(_ssl\.c:\d+\))?(?:['\")]|$)")


def _describe(exc: BaseException) -> str:
    """One readable line for an ldap3 / socket error (ldap3 nests reprs of tuples of exceptions)."""
    text = str(exc) or type(exc).__name__
    while (wrapped := _REPR_WRAPPING.match(text.strip())) is not None:  # ("('message',)",) → message
        text = wrapped.group(1).replace("\\'", "'")
    match = _CERT_DICT.search(text)
    if match:  # the whole certificate as a dict: keep its names, drop the rest
        names = ", ".join(v for _, v in _SAN.findall(match.group(1))) or "none"
        text = text.replace(match.group(0), f"the certificate (for {names}) does not match {match.group(2)}")
    return text if len(text) < 1000 else text[:1000] + "…"


def _tls_problem(exc: BaseException, host: str, ca_file: str | None, verify: bool) -> tuple[str, str]:
    """(the reason, what to do) for a failed TLS handshake; never cut before the reason."""
    text = _describe(exc)
    full = str(exc)
    match = _CERT_DICT.search(full)
    if match:
        names = ", ".join(v for _, v in _SAN.findall(match.group(1))) or "none"
        return (f"the server's certificate is for {names}, not for {host!r}",
                f"use one of those names as the Connection's host (or have the certificate reissued with {host!r})")
    verified = _VERIFY.search(full)
    if verified:
        reason = f"certificate verify failed: {verified.group(1).strip()}"
        if "expired" in reason:
            return reason, "the server's certificate has expired: renew it on the server"
        if ca_file:
            return reason, (f"the CA file {ca_file!r} ('ca_file' extra) does not hold the CA that signed the server's "
                            "certificate: point 'ca_file' at that CA's PEM (the issuing CA, or the whole chain)")
        return reason, "trust the server's CA: set the 'ca_file' extra to its PEM file"
    if not verify:
        return text, "check the TLS settings ('tls' extra, and the port: 636 for LDAPS, 389 for StartTLS)"
    return text, ("check the TLS settings ('tls' extra, and the port: 636 for LDAPS, 389 for StartTLS)" if ca_file
                  else "check the TLS settings; if the server's CA is not a public one, set the 'ca_file' extra")


def _is_certificate_problem(exc: BaseException) -> bool:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ssl.SSLError):
            return True
        text = str(e).lower()
        if "certificate" in text or ("ssl" in text and "handshake" in text):
            return True
        e = e.__cause__ or e.__context__
    return False
