"""Bad input raises the fitting Python exception with the library's one-line message, and
leaves the model usable; no panic crosses into Python (a random-bytes sweep finds none).

Not here: what good input gives (test_parity.py, test_inputs.py)."""

import io
import os

import numpy as np
import pytest
from PIL import Image

import clip_rs
from conftest import FIXTURES, IMAGES, sample_photo

PHOTO = sample_photo(40, 30, seed=1)


@pytest.fixture(scope="module")
def baseline(tiny_text):
    return tiny_text.embed_images([PHOTO]), tiny_text.embed_texts(["a cat"])


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(PHOTO).save(buf, "JPEG", quality=90)
    return buf.getvalue()


CASES = {
    # name: (call on the model, exception type, words the message must hold)
    "missing file": (lambda m, tmp: m.embed_images([tmp / "nope.jpg"]), FileNotFoundError,
                     "nope.jpg"),
    "corrupt bytes": (lambda m, tmp: m.embed_images([PHOTO, b"\x89PNG\r\n\x1a\nnot a png"]),
                      ValueError, "image 1"),
    "truncated jpeg": (lambda m, tmp: m.embed_images([jpeg_bytes()[:300]]), ValueError,
                       "image 0"),
    "unknown format": (lambda m, tmp: m.embed_images([b"GIF89a......"]), ValueError,
                       "unsupported image format"),
    "wrong dtype": (lambda m, tmp: m.embed_images([PHOTO.astype(np.float32)]), ValueError,
                    "float32"),
    "wrong shape": (lambda m, tmp: m.embed_images([PHOTO[:, :, 0]]), ValueError, "(H, W, 3)"),
    "rgba array": (lambda m, tmp: m.embed_images([np.zeros((4, 4, 4), np.uint8)]), ValueError,
                   "(H, W, 3)"),
    "empty array": (lambda m, tmp: m.embed_images([np.zeros((0, 4, 3), np.uint8)]), ValueError,
                    "at least 1"),
    "empty image list": (lambda m, tmp: m.embed_images([]), ValueError, "empty"),
    "empty text list": (lambda m, tmp: m.embed_texts([]), ValueError, "empty"),
    "empty preprocess list": (lambda m, tmp: m.preprocess([]), ValueError, "empty"),
    "text too long": (lambda m, tmp: m.embed_texts(["ok", "a " * 80]), ValueError,
                      "text 1 is too long"),
    "text too long, second batch": (lambda m, tmp: m.embed_texts(["ok"] * 4 + ["a " * 80]),
                                    ValueError, "text 4 is too long"),
    "not an image": (lambda m, tmp: m.embed_images([42]), TypeError, "int"),
    "one path, not a list": (lambda m, tmp: m.embed_images("cat.jpg"), TypeError, "list"),
    "not a text": (lambda m, tmp: m.embed_texts(["a", 3]), TypeError, "text 1"),
    "batch size 0": (lambda m, tmp: m.embed_images([PHOTO], batch_size=0), ValueError,
                     "batch_size"),
    "a folder as image": (lambda m, tmp: m.embed_images([tmp]), OSError, str(os.sep)),
    "pixel values of another size": (
        lambda m, tmp: m.image_features(np.zeros((1, 3, 8, 8), np.float32)), ValueError,
        "[N, 3, 16, 16]"),
    "pixel values float64": (
        lambda m, tmp: m.image_features(np.zeros((1, 3, 16, 16))), ValueError, "float64"),
    "NaN pixel values": (
        lambda m, tmp: m.image_features(np.full((1, 3, 16, 16), np.nan, np.float32)),
        ValueError, "NaN"),
    "token id out of the vocabulary": (
        lambda m, tmp: m.text_features(np.array([[94, 500, 95]])), ValueError, "500"),
    "negative token id": (lambda m, tmp: m.text_features(np.array([[94, -1, 95]])),
                          ValueError, "-1"),
    "template without {}": (lambda m, tmp: m.zero_shot([PHOTO], ["cat"], ["a photo"]),
                            ValueError, "{}"),
    "duplicate labels": (lambda m, tmp: m.zero_shot([PHOTO], ["cat", "cat"]), ValueError,
                         "twice"),
    "embeddings of another dtype": (
        lambda m, tmp: m.similarity(np.zeros((1, 32)), np.zeros((1, 32), np.float32)),
        ValueError, "float64"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_raises_and_leaves_the_model_usable(name, tiny_text, baseline, tmp_path):
    call, exc, words = CASES[name]
    with pytest.raises(exc) as e:
        call(tiny_text, tmp_path)
    msg = str(e.value)
    print(f"{name}: {type(e.value).__name__}: {msg}")
    assert words in msg and "\n" not in msg
    if exc is ValueError:
        assert isinstance(e.value, clip_rs.ClipError)
    img, txt = baseline
    assert np.array_equal(tiny_text.embed_images([PHOTO]), img)
    assert np.array_equal(tiny_text.embed_texts(["a cat"]), txt)


def test_loading_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder"):
        clip_rs.CLIPModel(tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        clip_rs.CLIPModel(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(clip_rs.ClipError):
        clip_rs.CLIPModel(tmp_path)
    with pytest.raises(clip_rs.ClipError, match="precision"):
        clip_rs.CLIPModel(FIXTURES / "clip-tiny", precision="f8")
    with pytest.raises(clip_rs.ClipError, match="threads"):
        clip_rs.CLIPModel(FIXTURES / "clip-tiny", threads=100_000)
    with pytest.raises(FileNotFoundError):
        clip_rs.CLIPModel.random("ViT-Q/99")
    with pytest.raises(clip_rs.ClipError, match="too short"):
        clip_rs.tokenize(["a"], context_length=0)


def test_clip_model_env_and_hub_cache(tmp_path, monkeypatch):
    """CLIP_MODEL names the folder; a repository name is found in the HF cache."""
    monkeypatch.setenv("CLIP_MODEL", str(FIXTURES / "clip-tiny"))
    assert clip_rs.CLIPModel(threads=1).embed_dim == 32
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    for f in ("config.json", "model.safetensors"):
        os.symlink(FIXTURES / "clip-tiny" / f, snap / f)
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    m = clip_rs.CLIPModel("org/tiny", threads=1)
    assert m.weights_path.startswith(str(snap))
    monkeypatch.setenv("CLIP_MODEL", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="CLIP_MODEL"):
        clip_rs.CLIPModel()


def test_no_panic_reaches_python_on_hostile_bytes(tiny):
    """Mutated PNG and JPEG files: each is embedded or refused with ClipError, never a
    RuntimeError (a caught panic) or a crash."""
    rng = np.random.default_rng(0)
    seeds = [(IMAGES / n).read_bytes() for n in ("rgb8.png", "jpeg_420.jpg",
                                                 "jpeg_progressive.jpg", "palette4_trns.png")]
    refused = 0
    for i in range(300):
        b = bytearray(seeds[i % len(seeds)])
        for _ in range(rng.integers(1, 8)):
            b[rng.integers(0, len(b))] = rng.integers(0, 256)
        if i % 5 == 0:
            b = b[: rng.integers(1, len(b))]
        try:
            tiny.embed_images([bytes(b)])
        except clip_rs.ClipError:
            refused += 1
    assert refused > 0
