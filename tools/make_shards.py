"""Writes webdataset tar shards as img2dataset lays them out, for the tests and benchmarks of
`clip embed-shards` and `clip_rs.ray_data` (docs/scale.md).

Each sample is {key}.jpg or {key}.png (random-sized noise and gradients, made with Pillow),
{key}.json ({"url": ..., "key": ...}) and, for two samples in three, {key}.txt (a caption).
With --uniform, every sample is a JPEG with a caption (clip-retrieval's
reader skips the others). With --corrupt, sample 5 of the second shard is a truncated JPEG (the unreadable image the
outputs must list). Deterministic: the same arguments give the same bytes.

    python3 tools/make_shards.py OUT_DIR [--shards 4] [--per-shard 64] [--size 320] [--corrupt]

Not here: reading shards (tools/clip-cli/src/shard_read.rs, python/clip_rs/ray_data.py).
"""

import argparse
import io
import json
import random
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

WORDS = "a photo of the cat dog red blue small large tree house car on in with sky".split()


def image_bytes(rng: random.Random, size: int, fmt: str) -> bytes:
    w = rng.randint(size // 2, size)
    h = rng.randint(size // 2, size)
    nprng = np.random.default_rng(rng.getrandbits(32))
    base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * nprng.random(3)
    noise = nprng.integers(0, 64, (h, w, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format=fmt, quality=90)
    return buf.getvalue()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def write_shard(path: Path, shard: int, n: int, size: int, corrupt: bool,
                uniform: bool = False) -> None:
    rng = random.Random(1000 + shard)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(n):
            key = f"{shard:05d}{i:04d}"
            fmt = "PNG" if i % 3 == 1 and not uniform else "JPEG"
            data = image_bytes(rng, size, fmt)
            if corrupt and shard == 1 and i == 5:
                data = data[: len(data) // 3]
            ext = "png" if fmt == "PNG" else "jpg"
            add(tar, f"{key}.{ext}", data)
            if i % 3 != 2 or uniform:
                caption = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
                add(tar, f"{key}.txt", caption.encode())
            meta = {"url": f"https://example.com/{key}.{ext}", "key": key}
            add(tar, f"{key}.json", json.dumps(meta).encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--per-shard", type=int, default=64)
    ap.add_argument("--size", type=int, default=320, help="largest side in pixels")
    ap.add_argument("--corrupt", action="store_true", help="truncate sample 5 of shard 1")
    ap.add_argument("--uniform", action="store_true",
                    help="every sample a JPEG with a caption (all that clip-retrieval reads)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for s in range(a.shards):
        write_shard(a.out / f"{s:05d}.tar", s, a.per_shard, a.size, a.corrupt, a.uniform)


if __name__ == "__main__":
    main()
