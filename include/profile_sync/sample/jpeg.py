"""Tiny, valid baseline JPEGs without an imaging library.

:func:`make_jpeg` encodes a grayscale image made of flat 8x8 blocks: each block's level is its
DC coefficient and every AC coefficient is zero, so the entropy-coded data is one DC difference
and an end-of-block code per block. The result is a real JFIF file (SOI, APP0, DQT, SOF0, DHT,
SOS, EOI) that any decoder reads; different levels give different pictures and different bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

__all__ = ["make_jpeg"]

_QUANT: Final = 16
"""Every quantisation step; a flat block of pixel value v has DC = 8*(v-128)/16 = (v-128)/2."""

# Huffman tables (ITU T.81 annex C): 16 counts of codes per length 1..16, then the symbols.
# DC: categories 0..11 all get 4-bit codes 0000..1011 (no all-ones code, as the standard asks).
_DC_COUNTS: Final = bytes([0, 0, 0, 12] + [0] * 12)
_DC_SYMBOLS: Final = bytes(range(12))
# AC: only end-of-block (0x00) is ever used; a second symbol keeps the table ordinary.
_AC_COUNTS: Final = bytes([0, 2] + [0] * 14)
_AC_SYMBOLS: Final = bytes([0x00, 0x01])
_EOB_CODE: Final = (0b00, 2)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


_HEADER: Final = (
    b"\xff\xd8"
    + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    + _segment(0xDB, b"\x00" + bytes([_QUANT]) * 64)
)
_TABLES: Final = _segment(
    0xC4, b"\x00" + _DC_COUNTS + _DC_SYMBOLS + b"\x10" + _AC_COUNTS + _AC_SYMBOLS
)
_SCAN_HEADER: Final = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")


def make_jpeg(levels: Sequence[int], blocks_wide: int = 2) -> bytes:
    """Encode a grayscale JPEG of flat 8x8 blocks.

    ``levels`` gives each block's pixel value (0..255, rounded to even), row by row;
    ``len(levels)`` must be a multiple of ``blocks_wide``. The picture is
    ``8 * blocks_wide`` pixels wide and ``8 * len(levels) // blocks_wide`` high.
    """
    if not levels or len(levels) % blocks_wide:
        raise ValueError(
            f"need a non-empty multiple of blocks_wide={blocks_wide} levels, got {len(levels)}"
        )
    if any(not 0 <= v <= 255 for v in levels):
        raise ValueError(f"levels must be 0..255, got {list(levels)!r}")
    width = 8 * blocks_wide
    height = 8 * (len(levels) // blocks_wide)
    frame = _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")

    acc = 0  # bit accumulator
    nbits = 0
    previous = 0
    for level in levels:
        dc = (level - 128) // 2
        diff = dc - previous
        previous = dc
        category = abs(diff).bit_length()
        bits = diff if diff >= 0 else diff + (1 << category) - 1
        # 4-bit DC code (the category), the diff's bits, then the 2-bit EOB code.
        acc = (acc << 4) | category
        acc = (acc << category) | bits
        acc = (acc << _EOB_CODE[1]) | _EOB_CODE[0]
        nbits += 4 + category + _EOB_CODE[1]
    pad = -nbits % 8
    acc = (acc << pad) | ((1 << pad) - 1)  # pad the last byte with one-bits
    entropy = acc.to_bytes((nbits + pad) // 8, "big").replace(b"\xff", b"\xff\x00")
    return _HEADER + frame + _TABLES + _SCAN_HEADER + entropy + b"\xff\xd9"
