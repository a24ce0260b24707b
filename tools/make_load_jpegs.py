"""Writes N 640x480 JPEGs (quality 90) of seeded gradients, shapes and noise, for the load
benchmark of `clip serve` (docs/serving.md). Needs Pillow and NumPy.

Usage: python3 tools/make_load_jpegs.py OUT_DIR [N=16]

Not here: sending them (tools/clip-cli/examples/serve_load.rs).
"""

import os
import sys

import numpy as np
from PIL import Image, ImageDraw


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    for i in range(n):
        base = np.stack([(x * (i + 1) / 7 + y / 3) % 256, (y * 0.6 + i * 40) % 256,
                         (x * 0.3 + y * 0.2 + i * 15) % 256], axis=-1)
        noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        img = Image.fromarray(noisy, "RGB")
        draw = ImageDraw.Draw(img)
        for _ in range(12):
            x0, y0 = int(rng.integers(0, 600)), int(rng.integers(0, 440))
            w, h = int(rng.integers(20, 200)), int(rng.integers(20, 200))
            fill = tuple(int(v) for v in rng.integers(0, 256, 3))
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=fill)
        img.save(os.path.join(out, f"load{i:02d}.jpg"), quality=90)


if __name__ == "__main__":
    main()
