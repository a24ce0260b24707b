"""Writes sample.png, the image `clip demo` embeds: a red ball on green grass under a blue
sky with a yellow sun, 224 x 224, drawn from simple shapes (standard library only)."""

import struct
import zlib

W = H = 224


def pixel(x, y):
    # The sun: a yellow disc, top right.
    if (x - 175) ** 2 + (y - 45) ** 2 <= 22**2:
        return (250, 215, 60)
    # The ball: a red disc with a lighter highlight, on the grass.
    d2 = (x - 100) ** 2 + (y - 150) ** 2
    if d2 <= 40**2:
        if (x - 88) ** 2 + (y - 136) ** 2 <= 10**2:
            return (240, 120, 110)
        return (200, 30, 35)
    if y >= 140:
        # Grass, a little darker towards the bottom, in stripes.
        g = 150 - (y - 140) // 2 - (8 if (x // 16) % 2 else 0)
        return (40, g, 45)
    # Sky: lighter near the horizon.
    return (90 + y // 3, 150 + y // 4, 235)


def png(width, height, rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


if __name__ == "__main__":
    rows = [[pixel(x, y) for x in range(W)] for y in range(H)]
    with open("sample.png", "wb") as f:
        f.write(png(W, H, rows))
