"""LDIF directory connection: content records of RFC 2849.

The reference parser is python-ldap's ``ldif`` (maintained; ``version:``,
comments, folding, base64 ``::`` values, URL ``:<`` values — only ``file`` URLs
are followed). It keeps values as bytes, so binary attributes survive. It costs
~8 µs per line, 24 s for a 100,000-person export, so a fast path reads the
common shape of a file — records of ``attr: value`` / ``attr:: base64`` lines —
with bytes operations in C (~10× faster), and hands the whole file to
python-ldap whenever anything else appears (URL values, a malformed line), so
the maintained parser decides every unusual case and reports the line number.
The fast path is tested against python-ldap for equality.

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
from profile_sync.directory.errors import DirectoryError, LdifChangeRecordError

_LINE = re.compile(r"^Line (\d+): ")


class _Collector(ldif.LDIFParser):
    """Collects content records; refuses change records."""

    def __init__(self, stream, connection: str, path: Path) -> None:  # noqa: ANN001
        super().__init__(stream, process_url_schemes=["file"])
        self.connection = connection
        self.path = path
        self.entries: list[Entry] = []
        self._record_line = 0
        self._raw_dn: str | None = None

    def _consume_empty_lines(self):  # noqa: ANN202
        # The parser calls this between records; what it returns is the next record's "dn:" line,
        # which it checks with ldif.is_dn and decodes as UTF-8 before anything else.
        key, value = super()._consume_empty_lines()
        self._raw_dn = None
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
                self.connection,
                f"{self.path} holds a change record (changetype: {kind}); an LDIF connection "
                "imports content records only — export the directory as content records "
                "(for example with ldapsearch or ldifde) and point the connection at that file",
                dn=dn,
                position=self.line_counter,
            )
        self.entries.append(Entry(dn, attributes, self.line_counter))


class LdifDirectoryReader:
    """Reads an LDIF file as a directory (full import)."""

    def __init__(self, connection: str, path: Path) -> None:
        self.connection = connection
        self.path = Path(path)

    def file_hash(self) -> str:
        """SHA-256 of the file: the watermark of an LDIF connection."""
        digest = hashlib.sha256()
        with self.path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def watermark(self) -> dict[str, str]:
        """The delta state of an LDIF connection: the file's hash (an unchanged file is not read again)."""
        return {"file_sha256": self.file_hash()}

    def read_full(self, attributes: frozenset[str] | None = None) -> Iterator[Entry]:
        """Yield every content record of the file (only ``attributes``, lower case, when given)."""
        if not self.path.is_file():
            raise DirectoryError(self.connection, f"LDIF file {self.path} does not exist")
        fast = _fast_parse(self.path.read_bytes(), attributes)
        if fast is not None:
            for entry in fast:
                if entry.attributes.get("changetype"):
                    kind = entry.attributes["changetype"][0].decode("utf-8", "replace")
                    raise LdifChangeRecordError(
                        self.connection,
                        f"{self.path} holds a change record (changetype: {kind}); an LDIF connection "
                        "imports content records only — export the directory as content records "
                        "(for example with ldapsearch or ldifde) and point the connection at that file",
                        dn=entry.dn, position=entry.position)
            yield from fast
            return
        yield from self.read_full_reference(attributes)

    def read_full_reference(self, attributes: frozenset[str] | None = None) -> Iterator[Entry]:
        """Every content record, parsed by python-ldap (the reference parser)."""
        with self.path.open("rb") as fh:
            parser = _Collector(fh, self.connection, self.path)
            try:
                parser.parse_entry_records()
            except LdifChangeRecordError:
                raise
            except (ValueError, UnicodeDecodeError, EOFError) as exc:
                line = parser.line_counter
                match = _LINE.match(str(exc))
                if match:
                    line = int(match.group(1))
                hint = ""
                if _has_change_records(self.path):
                    hint = " (the file holds change records — changetype: — which an LDIF connection refuses)"
                raise DirectoryError(
                    self.connection, f"{self.path} is not valid LDIF: {_LINE.sub('', str(exc))}{hint}",
                    position=line,
                ) from exc
        if attributes is None:
            yield from parser.entries
        else:
            keep = attributes | {"changetype"}
            for e in parser.entries:
                yield Entry(e.dn, {k: v for k, v in e.attributes.items() if k in keep}, e.position)


def _fast_parse(data: bytes, attributes: frozenset[str] | None) -> list[Entry] | None:
    """Parse the common shape of LDIF with bytes operations; None when python-ldap must decide.

    Handles: CRLF, folding, comments, ``version:``, ``attr: value`` and
    ``attr:: base64``. Anything else (``:<`` URL values, a line without a colon,
    a record not starting with ``dn``, undecodable text) returns None.
    ``position`` is the record's ordinal in the file.
    """
    if b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")
    data = data.replace(b"\n ", b"")  # unfold continuation lines
    keep = None if attributes is None else attributes | {"changetype"}
    entries: list[Entry] = []
    b64 = binascii.a2b_base64
    keys: dict[bytes, str] = {}
    first = True
    ordinal = 0
    for record in data.split(b"\n\n"):
        lines = [ln for ln in record.split(b"\n") if ln and ln[0] != 35]  # 35 = "#"
        if not lines:
            continue
        if first:
            first = False
            if lines[0][:8].lower() == b"version:":
                lines = lines[1:]
                if not lines:
                    continue
        head, sep, value = lines[0].partition(b":")
        if not sep or head.lower() != b"dn" or len(lines) < 2:  # RFC 2849: a record has 1+ attributes
            return None
        try:
            if value[:1] == b":":
                dn = b64(value[1:]).decode("utf-8")
            else:
                dn = value.lstrip(b" ").decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        attrs: dict[str, list[bytes]] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            key = keys.get(name)
            if key is None:
                if not sep:
                    return None
                key = keys[name] = name.decode("ascii", "replace").lower()
            if keep is not None and key not in keep:
                continue
            lead = value[:1]
            if lead == b" ":
                value = value[1:] if value[1:2] != b" " else value.lstrip(b" ")
            elif lead == b":":
                try:
                    value = b64(value[1:])
                except binascii.Error:
                    return None
            elif lead == b"<":
                return None
            got = attrs.get(key)
            if got is None:
                attrs[key] = [value]
            else:
                got.append(value)
        ordinal += 1
        entries.append(Entry(dn, attrs, ordinal))
    return entries


def _has_change_records(path: Path) -> bool:
    with path.open("rb") as fh:
        return any(line.lower().startswith(b"changetype:") for line in fh)
