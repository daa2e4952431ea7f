"""The tiny JPEG builder: a well-formed baseline JFIF that real decoders read."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from profile_sync.sample import make_jpeg
from tests.servers._util import require_binary
from tests.servers.fixtures import _server_or_skip


def segments(data: bytes) -> tuple[list[int], bytes]:
    """Walk the markers up to the scan; return the markers and the entropy-coded data."""
    assert data[:2] == b"\xff\xd8"
    markers = []
    position = 2
    while True:
        assert data[position] == 0xFF
        marker = data[position + 1]
        (length,) = struct.unpack(">H", data[position + 2:position + 4])
        markers.append(marker)
        position += 2 + length
        if marker == 0xDA:
            break
    assert data[-2:] == b"\xff\xd9"
    return markers, data[position:-2]


def test_structure_and_size() -> None:
    data = make_jpeg([0, 64, 200, 255])
    markers, entropy = segments(data)
    assert markers == [0xE0, 0xDB, 0xC0, 0xC4, 0xDA]  # APP0, DQT, SOF0, DHT, SOS
    sof = data.index(b"\xff\xc0")
    precision, height, width, components = struct.unpack(">BHHB", data[sof + 4:sof + 10])
    assert (precision, height, width, components) == (8, 16, 16, 1)
    # inside the scan every 0xFF byte is stuffed with 0x00
    assert all(entropy[i + 1] == 0 for i in range(len(entropy) - 1) if entropy[i] == 0xFF)
    assert len(data) < 300


def test_different_levels_give_different_bytes() -> None:
    assert make_jpeg([10, 20, 30, 40]) != make_jpeg([10, 20, 30, 42])
    assert make_jpeg([1, 2, 3, 4]) == make_jpeg([1, 2, 3, 4])


@pytest.mark.parametrize("levels", [[], [1, 2, 3], [0, 256]])
def test_bad_levels_are_refused(levels: list[int]) -> None:
    with pytest.raises(ValueError):
        make_jpeg(levels)


def test_djpeg_decodes_the_expected_pixels(tmp_path: Path) -> None:
    with _server_or_skip("djpeg"):
        djpeg = require_binary("djpeg", "libjpeg-turbo-progs")
    levels = [0, 64, 200, 254, 128, 2, 250, 90]
    path = tmp_path / "photo.jpg"
    path.write_bytes(make_jpeg(levels, blocks_wide=4))
    decoded = subprocess.run([djpeg, "-pnm", str(path)], capture_output=True, timeout=30)
    assert decoded.returncode == 0 and not decoded.stderr, decoded.stderr
    header, pixels = decoded.stdout.split(b"\n255\n", 1)
    assert header == b"P5\n32 16"
    for block, level in enumerate(levels):
        row, column = divmod(block, 4)
        for y in range(8):
            start = (row * 8 + y) * 32 + column * 8
            assert set(pixels[start:start + 8]) == {level}, (block, y)
