#!/usr/bin/env python3
"""Write open_clip preprocessing references for crates/image/tests/open_clip_reference.rs.

For a few RGB and greyscale fixtures of crates/image/tests/fixtures/image/, runs open_clip's
own inference transform (`open_clip.transform.image_transform(size, is_train=False, ...)`,
torchvision on PIL images) in each resize mode (shortest, longest, squash) and interpolation
(bicubic, bilinear), at small sizes (odd ones too, so crops and pads round), and saves every
output tensor as float32 .npy with a manifest:

    python tools/reference/make_open_clip_image_reference.py [OUT_DIR]

Requires open_clip_torch (pip), which brings torch, torchvision and Pillow. Images are
opened and converted to RGB first (`Image.open(p).convert("RGB")`), as users of open_clip
do; what open_clip does with alpha or CMYK before that is out of scope here.
"""

import json
import os
import sys

import numpy as np
from PIL import Image
import open_clip
from open_clip.transform import image_transform

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SRC = os.path.join(ROOT, "crates/image/tests/fixtures/image")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "crates/image/tests/fixtures/open_clip")

IMAGES = [
    "checker_97x61.png",
    "edges_101x99_s17.png",
    "grad_250x180.png",
    "noise_37x23_up.png",
    "noise_5x400.png",
    "jpeg_420.jpg",
    "jpeg_gray.jpg",
    "jpeg_odd_33x17.jpg",
]
SIZES = [24, 37]
MODES = ["shortest", "longest", "squash"]
FILTERS = ["bicubic", "bilinear"]
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
# Another normalisation too (open_clip's default for some models is (0.5, 0.5, 0.5)).
MEAN2, STD2 = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = []
    for name in IMAGES:
        img = Image.open(os.path.join(SRC, name)).convert("RGB")
        for size in SIZES:
            for mode in MODES:
                for interp in FILTERS:
                    mean, std, fill = (MEAN, STD, 0) if interp == "bicubic" else (MEAN2, STD2, 97)
                    t = image_transform(
                        size, is_train=False, mean=mean, std=std,
                        resize_mode=mode, interpolation=interp, fill_color=fill,
                    )
                    case = {
                        "image": name, "size": size, "resize_mode": mode,
                        "interpolation": interp, "mean": mean, "std": std,
                        "fill_color": fill,
                    }
                    try:
                        x = t(img).numpy().astype(np.float32)
                    except ValueError as e:
                        # e.g. a 5x400 image whose short side rounds to 0 in `longest`.
                        case["error"] = str(e)
                        cases.append(case)
                        continue
                    stem = f"{os.path.splitext(name)[0]}_{size}_{mode}_{interp}"
                    np.save(os.path.join(OUT, stem + ".npy"), x)
                    case["output"] = stem + ".npy"
                    cases.append(case)
    manifest = {
        "open_clip": open_clip.__version__,
        "torch": __import__("torch").__version__,
        "torchvision": __import__("torchvision").__version__,
        "pillow": Image.__version__,
        "cases": cases,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(cases)} cases in {OUT}")


if __name__ == "__main__":
    main()
