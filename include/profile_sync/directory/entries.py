"""The small interface between directory readers and the engine."""

from __future__ import annotations

from typing import Iterator, NamedTuple, Protocol


class Entry(NamedTuple):
    """One directory object as read: its DN and raw attribute values.

    Attribute names are lower case; values are the raw bytes the directory sent
    (decoding is the connector space's job, so binary values stay intact).
    """

    dn: str
    attributes: dict[str, list[bytes]]
    position: int = 0
    """Where it came from (LDIF line number, search result index), for error messages."""


class DirectoryReader(Protocol):
    """Reads every entry of a directory connection (a full import)."""

    def read_full(self, attributes: frozenset[str] | None = None) -> Iterator[Entry]:
        """Yield every entry under the selected containers (only ``attributes``, lower case, when given)."""
        ...
