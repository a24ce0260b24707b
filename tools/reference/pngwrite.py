"""Minimal PNG writer for test fixtures: every colour type and bit depth, optional
tRNS and Adam7 interlacing. Pillow cannot write 2/4-bit gray, 16-bit RGB(A) or
interlaced files, so the reference script writes the raw PNG itself."""

import struct
import zlib

import numpy as np

COLOR_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _pack_rows(samples: np.ndarray, bit_depth: int) -> bytes:
    """samples: (h, w, c) integer array; returns filtered scanlines (Sub for 8/16-bit, None below)."""
    h, _, c = samples.shape
    out = bytearray()
    for y in range(h):
        row = samples[y].reshape(-1)
        if bit_depth >= 8:
            # Filter type 1 (Sub): each byte minus the byte one pixel to the left.
            raw = row.astype(">u2").tobytes() if bit_depth == 16 else row.astype(np.uint8).tobytes()
            bpp = c * bit_depth // 8
            b = np.frombuffer(raw, np.uint8).astype(np.int16)
            sub = b.copy()
            sub[bpp:] -= b[:-bpp]
            out.append(1)
            out += (sub & 0xFF).astype(np.uint8).tobytes()
            continue
        out.append(0)
        per = 8 // bit_depth
        vals = list(row.astype(int)) + [0] * ((-len(row)) % per)
        for i in range(0, len(vals), per):
            byte = 0
            for v in vals[i : i + per]:
                byte = (byte << bit_depth) | v
            out.append(byte)
    return bytes(out)


def write_png(path, samples, color_type, bit_depth, palette=None, trns=None, interlace=False, exif=None):
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, c = samples.shape
    assert c == COLOR_CHANNELS[color_type]
    raw = bytearray()
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += _pack_rows(sub, bit_depth)
    else:
        raw += _pack_rows(samples, bit_depth)
    data = b"\x89PNG\r\n\x1a\n"
    data += _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    if exif is not None:
        data += _chunk(b"eXIf", exif)
    if palette is not None:
        data += _chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        data += _chunk(b"tRNS", trns)
    data += _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    data += _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)
