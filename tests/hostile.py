"""Crafted hostile inputs shared by the security tests (built at test time, never committed)."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` white pixels: a few dozen KB on disk,
    400 megapixels (1.2 GB as RGB) once decoded at the default size. Compressed row by row, so
    building it never holds the raw image."""
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter byte "none", then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
