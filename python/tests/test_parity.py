"""Numbers against independent references: transformers' CLIPModel on the committed tiny
fixtures (and the full-size random ViT-B/32 when present), OpenAI's tokenizer ids on the
committed corpus, and Pillow + CLIPImageProcessor on the committed image fixtures. Bounds as
in the Rust tests (conftest.py).

Not here: input kinds, threads, errors (their own files)."""

import gzip
import json
import shutil

import numpy as np
import pytest

import clip_rs
from conftest import (FIXTURES, IMAGES, MIN_COSINE, TOKENIZER_CORPUS, TOL, full_reference_dirs,
                      max_abs, min_cosine, reference)


def check_model(model: clip_rs.CLIPModel, r: dict) -> list:
    """Every output against the reference; returns the names outside the bounds."""
    bad = []

    def check(name, got, want, tol=TOL):
        d = max_abs(got, want)
        print(f"{name:<32} max|diff| = {d:.3e}  {'OK' if d <= tol else 'NOT OK'}")
        if not d <= tol:
            bad.append(name)

    px, ids = r["pixel_values"], r["input_ids"]
    vis = model.vision_forward(px)
    assert len(vis["hidden_states"]) >= 2
    for i, h in enumerate(vis["hidden_states"]):
        check(f"vision.hidden_states.{i}", h.reshape(-1), r[f"vision.hidden_states.{i}"].reshape(-1))
    check("vision.pooled", vis["pooler_output"], r["vision.pooled"])
    check("image_features", model.image_features(px), r["image_features"])
    txt = model.text_forward(ids)
    for i, h in enumerate(txt["hidden_states"]):
        check(f"text.hidden_states.{i}", h.reshape(-1), r[f"text.hidden_states.{i}"].reshape(-1))
    check("text.last_hidden_state", txt["last_hidden_state"].reshape(-1),
          r["text.last_hidden_state"].reshape(-1))
    check("text.pooled", txt["pooler_output"], r["text.pooled"])
    check("text_features", model.text_features(ids), r["text_features"])
    img = model.image_features(px)
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    tf = model.text_features(ids)
    tf = tf / np.linalg.norm(tf, axis=1, keepdims=True)
    check("image_embeds", img, r["image_embeds"])
    check("text_embeds", tf, r["text_embeds"])
    assert min_cosine(img, r["image_embeds"]) >= MIN_COSINE
    assert min_cosine(tf, r["text_embeds"]) >= MIN_COSINE
    scale = float(np.exp(model.logit_scale))
    check("logits_per_image", model.logits(img, tf), r["logits_per_image"], TOL * scale)
    check("logits_per_text", model.logits(tf, img), r["logits_per_text"], TOL * scale)
    return bad


@pytest.mark.parametrize("name", ["clip-tiny", "clip-tiny2", "clip-tiny2-bf16"])
def test_tiny_fixtures_match_transformers(name):
    # A bf16 file against f32 bounds: bf16 weights with f32 arithmetic (the convert kernel);
    # the dot kernel, which rounds activations too, is the next test's.
    bf16 = name.endswith("bf16")
    model = clip_rs.CLIPModel(FIXTURES / name, threads=2, bf16_kernel="convert" if bf16 else None)
    assert model.precision == ("bf16" if bf16 else "f32")
    assert model.bf16_kernel == ("convert" if bf16 else None)
    assert check_model(model, reference(FIXTURES / name)) == []


def test_bf16_dot_kernel_is_close_to_transformers():
    """The dot kernel (activations rounded to bf16 too) where the CPU has it: embeddings within
    a cosine of 0.999 of transformers' f32, and not the convert kernel's bits."""
    d = FIXTURES / "clip-tiny2-bf16"
    r = reference(d)
    try:
        dot = clip_rs.CLIPModel(d, threads=2, bf16_kernel="dot")
    except clip_rs.ClipError as e:
        pytest.skip(f"no bf16 dot kernel on this CPU: {e}")
    conv = clip_rs.CLIPModel(d, threads=2, bf16_kernel="convert")
    assert dot.bf16_kernel == "dot"
    px = r["pixel_values"]
    got, other = dot.image_features(px), conv.image_features(px)
    got = got / np.linalg.norm(got, axis=1, keepdims=True)
    assert min_cosine(got, r["image_embeds"]) >= 0.999
    assert not np.array_equal(got, other / np.linalg.norm(other, axis=1, keepdims=True))


def test_openai_key_names_match_transformers(tmp_path):
    src = FIXTURES / "clip-tiny"
    shutil.copy(src / "config.json", tmp_path / "config.json")
    shutil.copy(src / "openai" / "model.safetensors", tmp_path / "model.safetensors")
    assert check_model(clip_rs.CLIPModel(tmp_path, threads=1), reference(src)) == []


def test_full_b32_matches_transformers_when_present():
    dirs = [d for d in full_reference_dirs() if (d / "reference.safetensors").is_file()]
    if not dirs:
        pytest.skip("no full-size reference: make one with `python tools/reference/"
                    "make_reference.py --config b32 --out models/clip-vit-b32-random` "
                    "or set CLIP_FULL_REFERENCE")
    for d in dirs:
        assert check_model(clip_rs.CLIPModel(d, threads=2), reference(d)) == [], d


def test_embed_calls_are_the_features_normalised(tiny_text):
    """embed_images/embed_texts = the checked features of preprocess/tokenize, normalised."""
    from conftest import sample_photo

    photos = [sample_photo(40, 30, s) for s in range(3)]
    feats = tiny_text.image_features(tiny_text.preprocess(photos))
    assert np.array_equal(tiny_text.embed_images(photos, normalize=False), feats)
    norm = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    assert max_abs(tiny_text.embed_images(photos), norm) <= 1e-6
    texts = ["a photo of a cat", "a diagram", "x"]
    tf = tiny_text.text_features(tiny_text.tokenize(texts))
    assert np.array_equal(tiny_text.embed_texts(texts, normalize=False), tf)
    assert max_abs(tiny_text.embed_texts(texts), tf / np.linalg.norm(tf, axis=1, keepdims=True)) <= 1e-6


def corpus() -> list:
    with gzip.open(TOKENIZER_CORPUS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_tokenize_matches_openai_clip_tokenize():
    records = corpus()
    assert len(records) >= 5000
    texts = [r["t"] for r in records]
    rows = clip_rs.tokenize(texts, truncate=True)
    assert rows.dtype == np.int64 and rows.shape == (len(texts), 77)
    want = np.array([r["ctx"] for r in records], dtype=np.int64)
    bad = np.nonzero((rows != want).any(axis=1))[0]
    assert bad.size == 0, f"{bad.size} rows differ from clip.tokenize, first: {texts[bad[0]]!r}"
    # Without truncation, exactly the texts OpenAI calls too long are refused.
    for r in records[:400]:
        try:
            clip_rs.tokenize([r["t"]])
            refused = False
        except clip_rs.ClipError:
            refused = True
        assert refused == r["long"], r["t"]


def test_model_tokenize_is_clip_tokenize():
    model = clip_rs.CLIPModel.random("ViT-B/32", threads=1)
    texts = [r["t"] for r in corpus()[:300]]
    assert np.array_equal(model.tokenize(texts, truncate=True), clip_rs.tokenize(texts, truncate=True))
    assert model.tokenize(["a cat"], 10).shape == (1, 10)


def image_cases() -> list:
    return json.loads((IMAGES / "manifest.json").read_text())["cases"]


@pytest.mark.parametrize("case", image_cases(), ids=lambda c: c["name"])
def test_preprocess_matches_pillow_and_clip_image_processor(case):
    p = clip_rs.Preprocessor(case["shortest_edge"], case["crop"], drop_alpha=case["drop_alpha"],
                             exif_transpose=case["exif"], threads=1)
    got = p([IMAGES / case["file"]])
    want = np.load(IMAGES / f"{case['name']}.pixel_values.npy")
    assert got.shape == (1,) + want.shape
    assert max_abs(got[0], want) <= 1e-6


def test_model_preprocess_uses_the_folders_config(tiny_dir, tiny):
    """The model's preprocess is its folder's preprocessor_config.json, on a batch."""
    files = [IMAGES / "rgb8.png", IMAGES / "jpeg_420.jpg", IMAGES / "palette8_trns.png"]
    got = tiny.preprocess(files)
    want = clip_rs.Preprocessor.from_pretrained(tiny_dir)(files)
    assert got.shape == (3, 3, 16, 16) and np.array_equal(got, want)


def test_int8_is_close_to_transformers_and_not_f32():
    """precision="int8" quantises the linear weights (per output channel) and activations
    (per row): close to transformers' f32 embeddings, and not the f32 path's bits."""
    d = FIXTURES / "clip-tiny2"
    r = reference(d)
    q = clip_rs.CLIPModel(d, threads=2, precision="int8")
    f = clip_rs.CLIPModel(d, threads=2)
    assert q.precision == "int8"
    px = r["pixel_values"]
    ids = r["input_ids"]
    for got, ref, f32 in [(q.image_features(px), r["image_embeds"], f.image_features(px)),
                          (q.text_features(ids), r["text_embeds"], f.text_features(ids))]:
        got = got / np.linalg.norm(got, axis=1, keepdims=True)
        assert min_cosine(got, ref) >= 0.99
        assert not np.array_equal(got, f32 / np.linalg.norm(f32, axis=1, keepdims=True))
