#!/usr/bin/env python3
"""Pillow references for the decodable files of the hostile-JPEG suite (issue #21), written
into crates/image/tests/fixtures/image/:

  photo_2000x1500.jpg        a synthetic photo (smooth gradients, texture, noise, edges),
                             encoded by Pillow (quality 85, 4:2:0)
  photo_2000x1500.rows.txt   CRC-32 of each row of Pillow's decode of that photo behind the
                             desync construction (tools/hostile_jpeg.py), as RGB u8: the
                             decode itself is 9 MB; a row CRC says where a difference is
  scans_400_small.npy        Pillow's RGB decode of scans_400_small.jpg (400 scans)

It checks on the way that Pillow decodes the desync file exactly as the plain photo.

Usage: pip install -r tools/reference/requirements.txt; python3 make_hostile_reference.py
Not here: the hostile files themselves (tools/hostile_jpeg.py, at test time).
"""

import io
import os
import sys
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "crates/image/tests/fixtures/image")
sys.path.insert(0, os.path.dirname(HERE))
import hostile_jpeg  # noqa: E402


def photo(h=1500, w=2000):
    rng = np.random.default_rng(2121)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    sky = np.stack([90 + 60 * y / h, 140 + 50 * y / h, 230 - 40 * y / h], -1)
    hill = (y > 700 + 120 * np.sin(x / 310) + 40 * np.sin(x / 47)).astype(np.float64)[..., None]
    ground = np.stack([70 + 30 * np.sin(x / 23) * np.cos(y / 31), 110 + 20 * np.sin(y / 17),
                       40 + 10 * np.cos(x / 13)], -1)
    img = sky * (1 - hill) + ground * hill
    sun = ((x - 1500) ** 2 + (y - 300) ** 2 < 120 ** 2)[..., None]
    img = np.where(sun, [255, 240, 200], img)
    img[1100:1400, 300:700] = [180, 40, 30]  # a house: hard edges
    img[1150:1250, 400:480] = [250, 250, 250]
    img += rng.normal(0, 4, img.shape)
    return np.clip(img.round(), 0, 255).astype(np.uint8)


def rgb(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def main():
    buf = io.BytesIO()
    Image.fromarray(photo()).save(buf, "JPEG", quality=85, subsampling=2)
    jpeg = buf.getvalue()
    with open(os.path.join(OUT, "photo_2000x1500.jpg"), "wb") as f:
        f.write(jpeg)
    plain, wrapped = rgb(jpeg), rgb(hostile_jpeg.desync(jpeg))
    assert (plain == wrapped).all(), "Pillow decodes the desync file differently"
    with open(os.path.join(OUT, "photo_2000x1500.rows.txt"), "w") as f:
        for row in wrapped:
            f.write(f"{zlib.crc32(row.tobytes()):08x}\n")
    np.save(os.path.join(OUT, "scans_400_small.npy"), rgb(hostile_jpeg.scans_400()))
    print(f"photo {len(jpeg)} bytes")


if __name__ == "__main__":
    main()
