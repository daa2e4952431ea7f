"""Just enough LDIF (RFC 2849) to seed the test servers: write entries, read records back.

Entries are ``(dn, {attribute: value-or-values})``; values are ``str``, ``bytes`` or ``int``.
The reader understands comments, folded lines, ``version:``, base64 (``::``) values and
the change types ``add`` (or none), ``modify`` (add/replace/delete) and ``delete``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

__all__ = ["Entry", "LdifRecord", "Value", "entries_to_ldif", "read_ldif", "write_ldif"]

Value = Union[str, bytes, int]
Entry = tuple[str, Mapping[str, Union[Value, Sequence[Value]]]]

_SAFE = re.compile(r"^[\x01-\x09\x0b-\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b-\x0c\x0e-\x7f]*$")


def _as_bytes(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _line(name: str, value: Value) -> str:
    raw = _as_bytes(value)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if text is not None and (text == "" or (_SAFE.match(text) and not text.endswith(" "))):
        return f"{name}: {text}"
    return f"{name}:: {base64.b64encode(raw).decode('ascii')}"


def _values(value: Value | Sequence[Value]) -> list[Value]:
    if isinstance(value, (str, bytes, int)):
        return [value]
    return list(value)


def entries_to_ldif(entries: Iterable[Entry | Mapping[str, object]]) -> str:
    """Content LDIF for *entries* (tuples ``(dn, attrs)`` or mappings with a ``dn`` key)."""
    out: list[str] = []
    for entry in entries:
        if isinstance(entry, Mapping):
            attrs = dict(entry)
            dn = str(attrs.pop("dn"))
        else:
            dn, attrs = entry[0], dict(entry[1])
        out.append(_line("dn", dn))
        for name, value in attrs.items():
            out.extend(_line(name, v) for v in _values(value))  # type: ignore[arg-type]
        out.append("")
    return "\n".join(out) + "\n"


def write_ldif(path: Path, entries: Iterable[Entry | Mapping[str, object]]) -> Path:
    path.write_text(entries_to_ldif(entries), encoding="utf-8")
    return path


@dataclass
class LdifRecord:
    """One LDIF record. For ``modify``, *changes* holds ``(op, attribute, values)``."""

    dn: str
    changetype: Literal["add", "modify", "delete"] = "add"
    attributes: dict[str, list[bytes]] = field(default_factory=dict)
    changes: list[tuple[Literal["add", "replace", "delete"], str, list[bytes]]] = field(
        default_factory=list
    )


def _unfold(text: str) -> Iterator[list[tuple[str, bytes]]]:
    """Yield records as lists of (name, raw value) pairs."""
    record: list[tuple[str, bytes]] = []
    logical: list[str] = []

    def flush_line() -> None:
        if not logical:
            return
        line = "".join(logical)
        logical.clear()
        if line.startswith("#"):
            return
        if line == "-":
            record.append(("-", b""))
            return
        name, sep, rest = line.partition(":")
        if not sep:
            raise ValueError(f"LDIF line without a colon: {line[:80]!r}")
        if rest.startswith(":"):
            record.append((name, base64.b64decode(rest[1:].strip())))
        elif rest.startswith("<"):
            raise ValueError(f"LDIF URL values are not supported here: {line[:80]!r}")
        else:
            record.append((name, rest.lstrip(" ").encode("utf-8")))

    for raw_line in text.splitlines():
        if raw_line.startswith(" ") and logical:
            logical.append(raw_line[1:])
            continue
        flush_line()
        if raw_line.strip() == "":
            if record:
                yield record
                record = []
            continue
        logical.append(raw_line)
    flush_line()
    if record:
        yield record


def read_ldif(text: str) -> Iterator[LdifRecord]:
    """Parse LDIF *text* into records."""
    for pairs in _unfold(text):
        if pairs and pairs[0][0].lower() == "version":
            pairs = pairs[1:]
            if not pairs:
                continue
        if pairs[0][0].lower() != "dn":
            raise ValueError(f"LDIF record does not start with dn: {pairs[0]!r}")
        rec = LdifRecord(dn=pairs[0][1].decode("utf-8"))
        body = pairs[1:]
        if body and body[0][0].lower() == "changetype":
            rec.changetype = body[0][1].decode().strip().lower()  # type: ignore[assignment]
            body = body[1:]
        if rec.changetype == "add":
            for name, value in body:
                rec.attributes.setdefault(name, []).append(value)
        elif rec.changetype == "modify":
            op: str | None = None
            attr = ""
            values: list[bytes] = []
            for name, value in [*body, ("-", b"")]:
                if name == "-":
                    if op is not None:
                        rec.changes.append((op, attr, values))  # type: ignore[arg-type]
                    op, values = None, []
                elif op is None:
                    op, attr = name.lower(), value.decode().strip()
                    if op not in ("add", "replace", "delete"):
                        raise ValueError(f"unknown modify operation {op!r} in {rec.dn}")
                else:
                    values.append(value)
        elif rec.changetype != "delete":
            raise ValueError(f"unsupported changetype {rec.changetype!r} in {rec.dn}")
        yield rec
