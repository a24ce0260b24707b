#!/usr/bin/env python3
"""Time PIL + CLIPImageProcessor (transformers 5, PIL backend) against clip-rs on
the same JPEG files, single-threaded, with the runs interleaved.

  python3 tools/reference/bench_pil_preprocess.py [--rounds 7] [--iters 10] [--dir DIR]

Writes the benchmark images into DIR if missing (default target/bench-images:
photo_640x480.jpg and photo_4000x3000.jpg, quality 90, 4:2:0; the criterion
bench benches/benches/preprocess.rs reads the same files), builds the Rust timing
example in release mode, then alternates rounds: ITERS PIL runs, ITERS Rust runs
(in its own process, one thread, timed inside so process start is excluded).
Reports the median per-image time of each side and the ratio. The machine is
shared: medians over interleaved rounds are what to quote.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = [(640, 480), (4000, 3000)]


def photo_like(w, h, seed):
    """Smooth multi-frequency colour field plus noise: compresses like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = []
    for c in range(3):
        f = rng.uniform(2, 9, 4)
        v = 128 + 60 * np.sin(x / w * f[0] + c) * np.cos(y / h * f[1]) + 40 * np.sin((x + y) / (w + h) * f[2] * 3)
        chans.append(v)
    img = np.stack(chans, -1) + rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_images(d):
    os.makedirs(d, exist_ok=True)
    paths = []
    for w, h in SIZES:
        p = os.path.join(d, f"photo_{w}x{h}.jpg")
        if not os.path.exists(p):
            Image.fromarray(photo_like(w, h, w)).save(p, quality=90, subsampling=2)
        paths.append(p)
    return paths


def pil_round(proc, path, iters):
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        im = Image.open(path)
        proc(images=im, return_tensors="np")
        times.append((time.perf_counter() - t) * 1e3)
    return times


def rust_round(exe, path, iters):
    out = subprocess.run([exe, path, str(iters)], check=True, capture_output=True, text=True,
                         env={**os.environ, "RAYON_NUM_THREADS": "1"})
    return float(out.stdout.strip().split("=")[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(ROOT, "target/bench-images"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--make-only", action="store_true", help="only write the images")
    args = ap.parse_args()
    paths = make_images(args.dir)
    if args.make_only:
        return
    from transformers import CLIPImageProcessorPil

    proc = CLIPImageProcessorPil()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "clip", "--example", "preprocess_timing"],
                   cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target/release/examples/preprocess_timing")
    print(f"{'image':<22} {'PIL+HF ms':>10} {'clip-rs ms':>11} {'ratio':>7}")
    for path in paths:
        iters = args.iters if "640" in path else max(2, args.iters // 4)
        pil_medians, rust_medians = [], []
        for _ in range(args.rounds):
            pil_medians.append(statistics.median(pil_round(proc, path, iters)))
            rust_medians.append(rust_round(exe, path, iters))
        p, r = statistics.median(pil_medians), statistics.median(rust_medians)
        print(f"{os.path.basename(path):<22} {p:>10.2f} {r:>11.2f} {p / r:>6.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
