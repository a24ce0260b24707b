#!/usr/bin/env python3
"""Write the image-preprocessing fixtures for crates/image/tests/.

For every test image this writes the encoded file and, computed with Pillow and
transformers 5's CLIPImageProcessorPil (the PIL backend of CLIPImageProcessor):
  NAME.resized.npy       uint8 [H, W, 3]: the image after convert + resize, before crop
  NAME.pixel_values.npy  float32 [3, C, C]: the final pixel_values
  NAME.decoded.npy       uint8 [H, W, 3]: Pillow's decoded RGB (JPEG only, to
                         measure the decoder difference)
and a manifest.json describing the cases. Most cases use a small shortest edge
and crop (the arithmetic does not depend on 224) to keep the set compact; one
case uses the default 224 settings.

Usage: pip install pillow numpy transformers; python3 make_image_reference.py [OUT_DIR]
No torch needed.
"""

import io
import json
import os
import struct
import sys

import numpy as np
from PIL import Image, ImageOps
from transformers import CLIPImageProcessorPil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jpegwrite import write_jpeg  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import hostile_jpeg  # noqa: E402
import make_hostile_reference  # noqa: E402
from pngwrite import write_png  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "crates/image/tests/fixtures/image")
RNG = np.random.default_rng(1234)


# ---------------------------------------------------------------- patterns
def gradient(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = x * 255 / max(w - 1, 1)
    g = y * 255 / max(h - 1, 1)
    b = 255 - (r + g) / 2
    return np.stack([r, g, b], -1).round().astype(np.uint8)


def noise(h, w):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def checker(h, w, cell=4):
    y, x = np.mgrid[0:h, 0:w]
    on = ((y // cell + x // cell) % 2).astype(bool)
    img = np.zeros((h, w, 3), np.uint8)
    img[on] = (250, 30, 5)
    img[~on] = (3, 200, 255)
    return img


def edges(h, w):
    img = gradient(h, w) // 4
    img[:, w // 3 : w // 3 + max(w // 9, 1)] = 255
    img[h // 2 :, :] = 255 - img[h // 2 :, :]
    yy = np.arange(min(h, w))
    img[yy, yy] = (0, 0, 0)
    return img


def natural(h, w):
    """Smooth gradient plus mild noise: a stand-in for photo content."""
    base = gradient(h, w).astype(np.int16) + RNG.integers(-12, 13, (h, w, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- reference
def processor(s, c):
    return CLIPImageProcessorPil(size={"shortest_edge": s}, crop_size={"height": c, "width": c})


def reference(path, s, c, drop_alpha=False, exif=False):
    im = Image.open(path)
    if exif:
        im = ImageOps.exif_transpose(im)
    if drop_alpha:  # transformers 4 / OpenAI: plain convert("RGB"), alpha and colour key ignored
        im = im.convert("RGB")
        im.info.pop("transparency", None)  # else transformers 5 would still composite the key
    proc = processor(s, c)
    pv = proc(images=im, return_tensors="np")["pixel_values"][0]
    resized = proc(images=im, do_center_crop=False, do_rescale=False, do_normalize=False, return_tensors="np")[
        "pixel_values"
    ][0]
    assert pv.dtype == np.float32 and resized.dtype == np.uint8, (pv.dtype, resized.dtype)
    return np.ascontiguousarray(resized.transpose(1, 2, 0)), pv


CASES = []


def add(name, file, s, c, kind, drop_alpha=False, exif=False, decoded=False, keep_resized=True):
    path = os.path.join(OUT, file)
    resized, pv = reference(path, s, c, drop_alpha=drop_alpha, exif=exif)
    if keep_resized:
        np.save(os.path.join(OUT, name + ".resized.npy"), resized)
    np.save(os.path.join(OUT, name + ".pixel_values.npy"), pv)
    case = dict(name=name, file=file, kind=kind, shortest_edge=s, crop=c, drop_alpha=drop_alpha, exif=exif,
                resized=name + ".resized.npy" if keep_resized else None)
    if decoded:
        dec = np.asarray(Image.open(path).convert("RGB"))
        np.save(os.path.join(OUT, name + ".decoded.npy"), dec)
        case["decoded"] = name + ".decoded.npy"
    CASES.append(case)


def png_rgb(name, img, s, c, **kw):
    write_png(os.path.join(OUT, name + ".png"), img, 2, 8, interlace=kw.pop("interlace", False))
    add(name, name + ".png", s, c, "png", **kw)


# ---------------------------------------------------------------- PNG cases
def png_cases():
    # Patterns and sizes: downscale (antialias), upscale, identity, extreme aspect, padding.
    png_rgb("grad_250x180", gradient(180, 250), 64, 56)
    png_rgb("noise_37x23_up", noise(23, 37), 48, 48)
    png_rgb("checker_1x1", checker(1, 1), 16, 16)
    png_rgb("edges_2000x30", edges(30, 2000), 16, 16)
    png_rgb("edges_30x2000", edges(2000, 30), 12, 12)
    png_rgb("noise_2x3_pad", noise(3, 2), 24, 32)
    png_rgb("checker_64_identity", checker(64, 64, 3), 64, 64)
    png_rgb("noise_65x64", noise(64, 65), 64, 48)
    png_rgb("checker_97x61", checker(61, 97, 5), 40, 40)
    png_rgb("edges_101x99_s17", edges(99, 101), 17, 17)
    png_rgb("noise_5x400", noise(400, 5), 9, 9)
    png_rgb("edges_240x160_default", edges(160, 240), 224, 224, keep_resized=False)  # 224x336 u8 is big

    h, w = 17, 23
    g16 = RNG.integers(0, 65536, (h, w), dtype=np.uint16)
    g16[0, :8] = [0, 1, 254, 255, 256, 1000, 65535, 0x34]
    for depth in (1, 2, 4, 8, 16):
        samples = RNG.integers(0, 1 << depth, (h, w)) if depth < 16 else g16
        name = f"gray{depth}"
        write_png(os.path.join(OUT, name + ".png"), samples, 0, depth)
        add(name, name + ".png", 32, 32, "png")
        # tRNS colour key: Pillow compares its low byte after conversion.
        key = {1: 1, 2: 0, 4: 3, 8: int(samples[0, 0]), 16: 0x134}[depth]
        name = f"gray{depth}_trns"
        write_png(os.path.join(OUT, name + ".png"), samples, 0, depth, trns=struct.pack(">H", key))
        add(name, name + ".png", 32, 32, "png")
    for depth in (8, 16):
        samples = RNG.integers(0, 1 << depth, (h, w, 3))
        samples[0, 0] = [0x12, 0x34, 0x56]
        name = f"rgb{depth}"
        write_png(os.path.join(OUT, name + ".png"), samples, 2, depth)
        add(name, name + ".png", 32, 32, "png")
        name = f"rgb{depth}_trns"
        trns = struct.pack(">HHH", *(samples[1, 1] if depth == 8 else (0x112, 0x134, 0x156)))
        if depth == 16:
            samples[2, 2] = [0x1200, 0x3400, 0x5600]
        write_png(os.path.join(OUT, name + ".png"), samples, 2, depth, trns=trns)
        add(name, name + ".png", 32, 32, "png")
        ga = RNG.integers(0, 1 << depth, (h, w, 2))
        name = f"gray_alpha{depth}"
        write_png(os.path.join(OUT, name + ".png"), ga, 4, depth)
        add(name, name + ".png", 32, 32, "png")
        rgba = RNG.integers(0, 1 << depth, (h, w, 4))
        name = f"rgba{depth}"
        write_png(os.path.join(OUT, name + ".png"), rgba, 6, depth)
        add(name, name + ".png", 32, 32, "png")
    for depth in (1, 2, 4, 8):
        n = min(1 << depth, 200)
        palette = RNG.integers(0, 256, (n - (1 if depth > 1 else 0), 3))  # last index(es) past the palette
        idx = RNG.integers(0, 1 << depth, (h, w))
        name = f"palette{depth}"
        write_png(os.path.join(OUT, name + ".png"), idx, 3, depth, palette=palette)
        add(name, name + ".png", 32, 32, "png")
        alphas = bytes(RNG.integers(0, 256, max(1, len(palette) // 2)).tolist())
        name = f"palette{depth}_trns"
        write_png(os.path.join(OUT, name + ".png"), idx, 3, depth, palette=palette, trns=alphas)
        add(name, name + ".png", 32, 32, "png")
    # Interlaced (Adam7).
    write_png(os.path.join(OUT, "rgb8_interlaced.png"), natural(29, 31), 2, 8, interlace=True)
    add("rgb8_interlaced", "rgb8_interlaced.png", 24, 24, "png")
    write_png(os.path.join(OUT, "gray2_interlaced.png"), RNG.integers(0, 4, (13, 11)), 0, 2, interlace=True)
    add("gray2_interlaced", "gray2_interlaced.png", 24, 24, "png")
    pal = RNG.integers(0, 256, (16, 3))
    write_png(
        os.path.join(OUT, "palette4_interlaced.png"), RNG.integers(0, 16, (9, 14)), 3, 4, palette=pal, interlace=True
    )
    add("palette4_interlaced", "palette4_interlaced.png", 24, 24, "png")
    write_png(os.path.join(OUT, "rgba16_interlaced.png"), RNG.integers(0, 65536, (10, 7, 4)), 6, 16, interlace=True)
    add("rgba16_interlaced", "rgba16_interlaced.png", 24, 24, "png")
    # Drop-alpha option (transformers 4 / OpenAI behaviour).
    add("rgba8_drop", "rgba8.png", 32, 32, "png", drop_alpha=True)
    add("palette8_trns_drop", "palette8_trns.png", 32, 32, "png", drop_alpha=True)
    add("gray8_trns_drop", "gray8_trns.png", 32, 32, "png", drop_alpha=True)
    # EXIF orientation 1..8 in a PNG eXIf chunk.
    for o in range(1, 9):
        tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">HHHIHH", 1, 0x0112, 3, 1, o, 0) + b"\0\0\0\0"
        name = f"exif{o}"
        write_png(os.path.join(OUT, name + ".png"), edges(7, 13), 2, 8, exif=tiff)
        add(name, name + ".png", 16, 16, "png", exif=True)


# ---------------------------------------------------------------- JPEG cases
def jpeg_cases():
    img = natural(64, 96)
    for sub, tag in ((0, "444"), (1, "422"), (2, "420")):
        name = f"jpeg_{tag}"
        Image.fromarray(img).save(os.path.join(OUT, name + ".jpg"), quality=90, subsampling=sub)
        add(name, name + ".jpg", 48, 48, "jpeg", decoded=True)
    Image.fromarray(img).save(os.path.join(OUT, "jpeg_progressive.jpg"), quality=90, subsampling=2, progressive=True)
    add("jpeg_progressive", "jpeg_progressive.jpg", 48, 48, "jpeg", decoded=True)
    Image.fromarray(natural(17, 33)).save(os.path.join(OUT, "jpeg_odd_33x17.jpg"), quality=90, subsampling=2)
    add("jpeg_odd_33x17", "jpeg_odd_33x17.jpg", 24, 24, "jpeg", decoded=True)
    Image.fromarray(img).save(
        os.path.join(OUT, "jpeg_restart.jpg"), quality=90, subsampling=2, restart_marker_blocks=3
    )
    add("jpeg_restart", "jpeg_restart.jpg", 48, 48, "jpeg", decoded=True)
    Image.fromarray(img[..., 1]).save(os.path.join(OUT, "jpeg_gray.jpg"), quality=90)
    add("jpeg_gray", "jpeg_gray.jpg", 48, 48, "jpeg", decoded=True)
    cmyk = np.concatenate([255 - img, RNG.integers(0, 80, (64, 96, 1), dtype=np.uint8)], -1)
    Image.fromarray(cmyk, "CMYK").save(os.path.join(OUT, "jpeg_cmyk.jpg"), quality=90)
    add("jpeg_cmyk", "jpeg_cmyk.jpg", 48, 48, "jpeg", decoded=True)
    Image.fromarray(checker(48, 64, 8)).save(os.path.join(OUT, "jpeg_checker_420.jpg"), quality=95, subsampling=2)
    add("jpeg_checker_420", "jpeg_checker_420.jpg", 48, 48, "jpeg", decoded=True)
    # Progressive variants, tiny sizes (chroma width <= 2 takes libjpeg's box
    # upsampling), restart markers in a progressive file, RGB without YCbCr.
    more = [
        ("jpeg_progressive_444", natural(40, 56), dict(subsampling=0, progressive=True)),
        ("jpeg_progressive_422_odd", natural(23, 37), dict(subsampling=1, progressive=True)),
        ("jpeg_progressive_gray", natural(30, 20)[..., 0], dict(progressive=True)),
        ("jpeg_progressive_restart", natural(33, 41), dict(subsampling=2, progressive=True, restart_marker_rows=1)),
        ("jpeg_tiny_3x3_420", natural(3, 3), dict(subsampling=2)),
        ("jpeg_tiny_4x5_420", natural(5, 4), dict(subsampling=2)),
        ("jpeg_1x1", natural(1, 1), dict(subsampling=2)),
        ("jpeg_q100_noise_420", noise(24, 40), dict(subsampling=2, quality=100)),
        ("jpeg_rgb_no_ycc", natural(20, 28), dict(subsampling=0, keep_rgb=True)),
    ]
    for name, arr, opts in more:
        Image.fromarray(arr).save(os.path.join(OUT, name + ".jpg"), **{"quality": 90, **opts})
        add(name, name + ".jpg", 24, 24, "jpeg", decoded=True)
    # Written by our minimal encoder (Pillow cannot): 4:4:0 (h1v2 chroma), 4:1:1
    # (box upsampling), and YCCK with an Adobe marker.
    h, w = 21, 30
    y, cb, cr, k = (natural(h, w)[..., 0], natural(-(-h // 2), w)[..., 1], natural(-(-h // 2), w)[..., 2],
                    natural(h, w)[..., 1])
    write_jpeg(os.path.join(OUT, "jpeg_440.jpg"), [y, cb, cr], [(1, 2), (1, 1), (1, 1)], (w, h))
    add("jpeg_440", "jpeg_440.jpg", 24, 24, "jpeg", decoded=True)
    c411 = natural(h, -(-w // 4))
    write_jpeg(os.path.join(OUT, "jpeg_411.jpg"), [y, c411[..., 0], c411[..., 1]], [(4, 1), (1, 1), (1, 1)], (w, h))
    add("jpeg_411", "jpeg_411.jpg", 24, 24, "jpeg", decoded=True)
    yc = natural(h, w)
    write_jpeg(os.path.join(OUT, "jpeg_ycck.jpg"), [yc[..., 0], yc[::2, ::2, 1], yc[::2, ::2, 2], k], [(2, 2), (1, 1), (1, 1), (2, 2)],
               (w, h), adobe_transform=2)
    add("jpeg_ycck", "jpeg_ycck.jpg", 24, 24, "jpeg", decoded=True)
    # EXIF orientation 6 in APP1: applied only on request (the reference ignores it).
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(natural(20, 28)).save(os.path.join(OUT, "jpeg_exif6.jpg"), quality=90, exif=exif.tobytes())
    add("jpeg_exif6", "jpeg_exif6.jpg", 16, 16, "jpeg", exif=True)
    add("jpeg_exif6_ignored", "jpeg_exif6.jpg", 16, 16, "jpeg", decoded=True)
    # Progressive files that stop after scan k (EOI there): libjpeg-turbo smooths the
    # blocks whose first AC coefficients are incomplete (issue #22).
    for name, arr, opts, k in [
        ("jpeg_prog_cut1_420", natural(23, 37), dict(subsampling=2), 1),
        ("jpeg_prog_cut2_420", natural(23, 37), dict(subsampling=2), 2),
        ("jpeg_prog_cut3_420", natural(23, 37), dict(subsampling=2), 3),
        ("jpeg_prog_cut6_420", natural(23, 37), dict(subsampling=2), 6),
        ("jpeg_prog_cut3_444", natural(40, 56), dict(subsampling=0), 3),
        ("jpeg_prog_cut1_gray", natural(30, 20)[..., 0], {}, 1),
        ("jpeg_prog_cut4_gray", natural(30, 20)[..., 0], {}, 4),
    ]:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=90, progressive=True, **opts)
        with open(os.path.join(OUT, name + ".jpg"), "wb") as f:
            f.write(hostile_jpeg.cut_after_scan(buf.getvalue(), k))
        add(name, name + ".jpg", 24, 24, "jpeg", decoded=True)
    # Every quantisation value 255, coefficients up to +-1023: libjpeg-turbo's SIMD IDCT
    # wraps and saturates in 16 bits (issue #22).
    with open(os.path.join(OUT, "jpeg_q255_extreme.jpg"), "wb") as f:
        f.write(hostile_jpeg.extreme_quant())
    add("jpeg_q255_extreme", "jpeg_q255_extreme.jpg", 24, 24, "jpeg", decoded=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    png_cases()
    jpeg_cases()
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"generator": "tools/reference/make_image_reference.py", "cases": CASES}, f, indent=1)
    # The hostile-JPEG references live in the same folder, which this script clears.
    make_hostile_reference.main()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(CASES)} cases, {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
