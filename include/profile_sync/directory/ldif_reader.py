"""LDIF directory connection: content records of RFC 2849.

The reference parser is python-ldap's ``ldif`` (maintained; ``version:``,
comments, folding, base64 ``::`` values, URL ``:<`` values — only ``file`` URLs
are followed). It keeps values as bytes, so binary attributes survive. It costs
~8 µs per line, 24 s for a 100,000-person export, so a fast path reads the
common shape of a file — records of ``attr: value`` / ``attr:: base64`` lines —
with bytes operations in C (~10× faster), and hands the whole file to
python-ldap whenever anything else appears (URL values, a line without a colon,
bytes that are not UTF-8, a ``version:`` other than 1), so the maintained parser
decides every unusual case and reports the line. The fast path never accepts
what python-ldap refuses and never reads another value: that is tested
differentially on generated files and on every cut point of sample records
(``tests/unit/directory/test_ldif_differential.py``).

Errors name the file, the line (the line the bad logical line starts on) and
the problem, in words an administrator can act on ("the line 'title' has no
colon …"). A missing file is a terminal error naming the path and the
configuration key it comes from.

A file cut short must never become a directory with silently wrong values:

* a line cut before its colon is an error (above);
* a record is only complete when an empty line follows it, as every exporter
  writes it (ldapsearch, slapcat, ldifde, python-ldap's ``LDIFWriter``): the
  last record of a file that does not end with an empty line may be cut short,
  so it carries a :attr:`~profile_sync.directory.entries.Entry.problem` and the
  connector space holds it in quarantine (its profile stays as it last was);
* a record without ``objectClass`` or without its anchor is held by the
  connector space too (``sync/connector_space.py``).

Change records (``changetype:``) are refused: an LDIF connection is a snapshot
of a directory, not a change log.

A record whose DN is not valid does not abort the file: the fast path passes
the DN text on as read; python-ldap's parser refuses it inline (``ldif.is_dn``
in ``parse_entry_records``), so the collector hands the parser an empty (valid)
DN for that record and restores the real text in ``handle``. The connector
space then quarantines that one object ("invalid DN", judged by the RFC 4514
parser of ``directory/dn.py``) and the import goes on.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from pathlib import Path
from typing import Iterator

import ldif

from profile_sync.directory.entries import Entry
from profile_sync.directory.errors import DirectoryError, DirectoryUnavailableError, LdifChangeRecordError

_LINE = re.compile(r"^Line (\d+): ")
_NO_COLON = re.compile(r"^no value-spec in (.*)$", re.S)

UNTERMINATED = ("the file ends inside this record (no empty line follows it, as exporters such as ldapsearch, "
                "slapcat and ldifde write after every record): it may be cut short — check the export, and end "
                "the file with an empty line")
"""Why the last record of a file that does not end with an empty line is held in quarantine."""

_CHANGE_HINT = ("an LDIF connection imports content records only — export the directory as content records "
                "(for example with ldapsearch or ldifde) and point the connection at that file")


class _Collector(ldif.LDIFParser):
    """Collects content records; refuses change records; knows the line it is on."""

    def __init__(self, stream, connection: str, path: Path) -> None:  # noqa: ANN001
        super().__init__(stream, process_url_schemes=["file"])
        self.connection = connection
        self.path = path
        self.entries: list[Entry] = []
        self.line = 1
        """The line the logical line being parsed starts on (python-ldap's ``line_counter`` is one ahead)."""
        self._raw_dn: str | None = None
        self._in_record = False
        self._hit_eof = False

    def _unfold_lines(self):  # noqa: ANN202
        # ``_last_line`` (the line about to be unfolded) was the last line read: its number is line_counter.
        self.line = self.line_counter
        return super()._unfold_lines()

    def _next_key_and_value(self):  # noqa: ANN202
        try:
            return super()._next_key_and_value()
        except EOFError:
            self._hit_eof = True
            if self._in_record:
                # A record of just a DN line at the end of the file: python-ldap raises; hand it on as
                # a record (without attributes, without an empty line after it: both get it held).
                self._in_record = False
                return None, None
            raise

    def _consume_empty_lines(self):  # noqa: ANN202
        # The parser calls this between records; what it returns is the next record's "dn:" line,
        # which it checks with ldif.is_dn and decodes as UTF-8 before anything else.
        self._in_record = False
        key, value = super()._consume_empty_lines()
        self._raw_dn = None
        self._hit_eof = False
        self._in_record = key is not None
        self.record_line = self.line
        if key == "dn" and value is not None:
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                # "\xff" is not an RFC 4514 escape: the connector space quarantines it as an invalid DN
                self._raw_dn = value.decode("utf-8", "backslashreplace")
                return key, b""
            if not ldif.is_dn(text):
                self._raw_dn = text
                return key, b""
        return key, value

    def handle(self, dn: str, entry: dict[str, list[bytes]]) -> None:  # noqa: D102
        self._in_record = False
        if self._raw_dn is not None:
            dn, self._raw_dn = self._raw_dn, None
        attributes: dict[str, list[bytes]] = {}
        for name, values in entry.items():
            key = name.lower()
            # URL values python-ldap could not fetch come back as None.
            vals = [v for v in values if v is not None]
            if key in attributes:
                attributes[key].extend(vals)
            else:
                attributes[key] = vals
        if "changetype" in attributes:
            kind = attributes["changetype"][0].decode("utf-8", "replace")
            raise LdifChangeRecordError(
                self.connection, f"{self.path} holds a change record (changetype: {kind}); {_CHANGE_HINT}",
                dn=dn, position=self.record_line)
        self.entries.append(Entry(dn, attributes, self.record_line, UNTERMINATED if self._hit_eof else None))


def _problem(exc: BaseException) -> str:
    """What python-ldap's error means, in words that say what to fix."""
    if isinstance(exc, EOFError):
        return "the file ends in the middle of a record (is it cut short?)"
    if isinstance(exc, UnicodeDecodeError):
        return (f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line): save the file as UTF-8, "
                "or write the value in base64 ('attribute:: …')")
    if isinstance(exc, binascii.Error):
        return f"invalid base64 value ({exc}): the value after '::' must be base64 (is the line cut short?)"
    text = _LINE.sub("", str(exc))
    match = _NO_COLON.match(text)
    if match:
        return (f"the line {match.group(1)} has no colon: every line of a record is 'attribute: value' "
                "(is the file cut short, or a line broken without the leading space of a continuation?)")
    if text.startswith("invalid literal for int()"):
        return "the 'version:' line must say 'version: 1'"
    if text.startswith("First line of record does not start with"):
        return f"a record must start with its 'dn:' line; this one starts with {text.partition(': ')[2]}"
    return text


class LdifDirectoryReader:
    """Reads an LDIF file as a directory (full import)."""

    def __init__(self, connection: str, path: Path, config_key: str | None = None) -> None:
        self.connection = connection
        self.path = Path(path)
        self.config_key = config_key
        """Where the path comes from in the configuration (``directories[0].path``), for error messages."""

    def _open_error(self, exc: OSError) -> DirectoryError | DirectoryUnavailableError:
        where = f" (configuration key {self.config_key})" if self.config_key else ""
        if isinstance(exc, FileNotFoundError):
            return DirectoryError(self.connection, f"the LDIF file {self.path} does not exist{where}: "
                                                   "export the directory there, or correct the path")
        if isinstance(exc, IsADirectoryError):
            return DirectoryError(self.connection, f"{self.path}{where} is a folder, not an LDIF file")
        if isinstance(exc, PermissionError):
            return DirectoryError(self.connection, f"the LDIF file {self.path}{where} cannot be read: permission "
                                                   "denied — let the worker's user read it")
        return DirectoryUnavailableError(f"directory {self.connection!r}: the LDIF file {self.path}{where} could "
                                         f"not be read: {exc}")

    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise self._open_error(exc) from None

    def file_hash(self) -> str:
        """SHA-256 of the file: the watermark of an LDIF connection."""
        digest = hashlib.sha256()
        try:
            with self.path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise self._open_error(exc) from None
        return digest.hexdigest()

    def watermark(self) -> dict[str, str]:
        """The delta state of an LDIF connection: the file's hash (an unchanged file is not read again)."""
        return {"file_sha256": self.file_hash()}

    def read_full(self, attributes: frozenset[str] | None = None) -> Iterator[Entry]:
        """Yield every content record of the file (only ``attributes``, lower case, when given)."""
        fast = _fast_parse(self._read_bytes(), attributes)
        if fast is not None:
            for entry in fast:
                if entry.attributes.get("changetype"):
                    kind = entry.attributes["changetype"][0].decode("utf-8", "replace")
                    raise LdifChangeRecordError(
                        self.connection, f"{self.path} holds a change record (changetype: {kind}); {_CHANGE_HINT}",
                        dn=entry.dn, position=entry.position)
            yield from fast
            return
        yield from self.read_full_reference(attributes)

    def read_full_reference(self, attributes: frozenset[str] | None = None) -> Iterator[Entry]:
        """Every content record, parsed by python-ldap (the reference parser)."""
        try:
            fh = self.path.open("rb")
        except OSError as exc:
            raise self._open_error(exc) from None
        with fh:
            parser = None
            try:
                parser = _Collector(fh, self.connection, self.path)  # reads the first line
                parser.parse_entry_records()
            except LdifChangeRecordError:
                raise
            except (ValueError, UnicodeDecodeError, EOFError) as exc:  # binascii.Error is a ValueError
                if parser is None:
                    line = 1
                elif isinstance(exc, UnicodeDecodeError):
                    line = parser.line_counter + 1  # the line python-ldap failed to read (it reads one ahead)
                else:
                    line = parser.line
                hint = ""
                if _has_change_records(self.path):
                    hint = " (the file holds change records — changetype: — which an LDIF connection refuses)"
                raise DirectoryError(
                    self.connection, f"{self.path} is not valid LDIF: {_problem(exc)}{hint}", position=line,
                ) from exc
        if attributes is None:
            yield from parser.entries
        else:
            keep = attributes | {"changetype"}
            for e in parser.entries:
                yield e._replace(attributes={k: v for k, v in e.attributes.items() if k in keep})


# Bytes python-ldap's ``str.lstrip()`` may strip from the start of a value (ASCII whitespace, the
# separators \x1c-\x1f, and any non-ASCII lead byte, which may start a Unicode space).
_MAYBE_SPACE = frozenset(b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f") | frozenset(range(0x80, 0x100))


def _text_value(value: bytes) -> bytes:
    """The value of an ``attr: value`` line (``value`` starts after the colon), as python-ldap reads it."""
    if value[:1] != b" ":
        return value  # "attr:value": taken as is
    rest = value[1:]
    if rest and rest[0] in _MAYBE_SPACE:
        return rest.decode("utf-8").lstrip().encode("utf-8")
    return rest


def _fast_parse(data: bytes, attributes: frozenset[str] | None) -> list[Entry] | None:
    """Parse the common shape of LDIF with bytes operations; None when python-ldap must decide.

    Handles: CRLF, folding, comments, ``version: 1``, ``attr: value`` and
    ``attr:: base64``. Anything else (``:<`` URL values, a line without a colon,
    a record not starting with ``dn:``, a ``control:`` line, bytes that are not
    UTF-8, invalid base64) returns None. ``position`` is the record's ordinal in
    the file. The last record carries :data:`UNTERMINATED` when no empty line
    follows it.
    """
    try:
        data.decode("utf-8")  # python-ldap reads every line as UTF-8 text: so does this path
    except UnicodeDecodeError:
        return None
    if b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")
    data = data.replace(b"\n ", b"")  # unfold continuation lines
    keep = None if attributes is None else attributes | {"changetype"}
    entries: list[Entry] = []
    b64 = binascii.a2b_base64
    keys: dict[bytes, str] = {}
    first = True
    ordinal = 0
    records = data.split(b"\n\n")
    last = len(records) - 1
    for number, record in enumerate(records):
        lines = [ln for ln in record.split(b"\n") if ln and ln[0] != 35]  # 35 = "#"
        if not lines:
            continue
        if first:
            first = False
            if lines[0][:8] == b"version:":
                if lines[0][8:].strip(b" ") != b"1":
                    return None  # RFC 2849 knows version 1 only: python-ldap decides
                lines = lines[1:]
                if not lines:
                    continue
        head, sep, value = lines[0].partition(b":")
        if not sep or head != b"dn" or len(lines) < 2:  # RFC 2849: a record has 1+ attributes
            return None
        if lines[1][:8] == b"control:":  # python-ldap reads controls, not attributes
            return None
        try:
            if value[:1] == b":":
                if not value.isascii():
                    return None
                dn = b64(value[1:]).decode("utf-8")
            elif value[:1] == b"<":
                return None
            else:
                dn = _text_value(value).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        attrs: dict[str, list[bytes]] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:  # a line without a colon (a file cut short?): python-ldap reports it with its line
                return None
            key = keys.get(name)
            if key is None:
                key = keys[name] = name.decode("utf-8").lower()
            if keep is not None and key not in keep:
                continue
            lead = value[:1]
            if lead == b":":
                if not value.isascii():  # python-ldap refuses non-ASCII base64 text
                    return None
                try:
                    value = b64(value[1:])
                except binascii.Error:
                    return None
            elif lead == b"<":
                return None
            elif lead == b" ":
                value = value[1:]
                if value and value[0] in _MAYBE_SPACE:  # rare: strip as python-ldap does
                    value = value.decode("utf-8").lstrip().encode("utf-8")
            got = attrs.get(key)
            if got is None:
                attrs[key] = [value]
            else:
                got.append(value)
        ordinal += 1
        entries.append(Entry(dn, attrs, ordinal, UNTERMINATED if number == last else None))
    return entries


def _has_change_records(path: Path) -> bool:
    with path.open("rb") as fh:
        return any(line.lower().startswith(b"changetype:") for line in fh)
