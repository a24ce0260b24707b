"""Every kind of image item gives bitwise the same result for one picture: a path (str and
os.PathLike), encoded bytes (bytes, bytearray, memoryview), a uint8 (H, W, 3) array and a
PIL image (converted in memory as transformers does); and results do not depend on the batch
size.

Not here: numbers against PyTorch (test_parity.py)."""

import numpy as np
import pytest
from PIL import Image

import clip_rs
from conftest import IMAGES, sample_photo


def test_paths_bytes_arrays_and_pil_give_the_same_embedding(tiny, tmp_path):
    photo = sample_photo(64, 48, seed=3)
    png = tmp_path / "photo.png"
    Image.fromarray(photo).save(png)
    data = png.read_bytes()
    items = [str(png), png, data, bytearray(data), memoryview(data), photo,
             Image.open(png), Image.fromarray(photo)]
    got = tiny.embed_images(items)
    assert got.shape == (len(items), tiny.embed_dim) and got.dtype == np.float32
    for i in range(1, len(items)):
        assert np.array_equal(got[i], got[0]), f"item {i} ({type(items[i]).__name__})"
    # Each alone gives the row it had in the batch.
    for i, item in enumerate(items):
        assert np.array_equal(tiny.embed_images([item])[0], got[0]), i
    # A non-contiguous view is copied in order.
    wide = np.concatenate([photo, photo], axis=1)
    assert not wide[:, :64].flags.c_contiguous
    assert np.array_equal(tiny.embed_images([wide[:, :64]]), got[:1])
    assert np.array_equal(tiny.embed_images([np.asfortranarray(photo)]), got[:1])


# PNG (RGB, RGBA, palette with and without transparency, grey, grey + alpha, 16-bit grey)
# and JPEG (RGB, grey, CMYK): PIL's conversion in clip_rs equals the decoder's.
PIL_CASES = ["rgb8.png", "rgba8.png", "palette8.png", "palette8_trns.png", "palette2.png",
             "gray8.png", "gray8_trns.png", "gray_alpha8.png", "gray1.png", "gray16.png",
             "rgb8_trns.png", "rgba16.png", "jpeg_420.jpg", "jpeg_gray.jpg", "jpeg_cmyk.jpg",
             "jpeg_ycck.jpg", "jpeg_progressive.jpg"]


@pytest.mark.parametrize("name", PIL_CASES)
def test_pil_images_convert_as_the_decoder_does(name):
    p = clip_rs.Preprocessor(64, 56, threads=1)
    path = IMAGES / name
    with Image.open(path) as img:
        mode = img.mode
        from_pil = p([img])
    from_path = p([path])
    from_bytes = p([path.read_bytes()])
    assert np.array_equal(from_bytes, from_path)
    assert np.array_equal(from_pil, from_path), f"{name}: PIL mode {mode}"


def test_pil_modes_cover_the_brief():
    modes = {Image.open(IMAGES / n).mode for n in PIL_CASES}
    assert {"RGB", "RGBA", "P", "L", "LA", "CMYK"} <= modes, modes


def test_results_do_not_depend_on_batch_size(tiny_text):
    photos = [sample_photo(40 + 7 * i, 30 + 5 * i, seed=i) for i in range(7)]
    one = tiny_text.embed_images(photos, batch_size=1)
    for b in (2, 3, 7, 64):
        assert np.array_equal(tiny_text.embed_images(photos, batch_size=b), one), b
    texts = [f"photo number {i} of a {'very ' * i}big cat" for i in range(7)]
    one = tiny_text.embed_texts(texts, batch_size=1)
    for b in (2, 5, 64):
        assert np.array_equal(tiny_text.embed_texts(texts, batch_size=b), one), b


def test_generators_and_tuples_are_lists(tiny):
    photos = [sample_photo(30, 30, seed=i) for i in range(3)]
    want = tiny.embed_images(photos)
    assert np.array_equal(tiny.embed_images(tuple(photos)), want)
    assert np.array_equal(tiny.embed_images(p for p in photos), want)
    assert np.array_equal(tiny.embed_images([Image.fromarray(p) for p in photos]), want)


def test_zero_shot_is_softmax_of_logits_against_class_embeddings(tiny_text):
    photos = [sample_photo(40, 30, seed=i) for i in range(2)]
    labels = ["cat", "dog", "a diagram"]
    templates = clip_rs.IMAGENET_TEMPLATES[:5]
    probs = tiny_text.zero_shot(photos, labels, templates)
    assert probs.shape == (2, 3)
    classes = tiny_text.class_embeddings(labels, templates)
    # The class embedding is the renormalised mean of the prompts' embeddings.
    each = tiny_text.embed_texts([t.format(l) for l in labels for t in templates])
    mean = each.reshape(3, len(templates), -1).mean(axis=1)
    assert np.abs(classes - mean / np.linalg.norm(mean, axis=1, keepdims=True)).max() < 1e-6
    want = tiny_text.probs(tiny_text.embed_images(photos), classes)
    assert np.abs(probs - want).max() < 1e-6
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-6)
    assert len(clip_rs.IMAGENET_TEMPLATES) == 80 and "{}" in clip_rs.IMAGENET_TEMPLATES[0]
