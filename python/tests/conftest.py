"""Shared pytest fixtures: the repository's committed model fixtures and their PyTorch
references, a tiny model with a vocabulary that fits it, sample images, and the bounds the
Rust tests use (tests/tests/model_reference.rs).

Not here: the tests themselves; nothing here needs torch or transformers."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import clip_rs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
IMAGES = ROOT / "crates" / "image" / "tests" / "fixtures" / "image"
TOKENIZER_CORPUS = ROOT / "crates" / "tokenizer" / "tests" / "fixtures" / "tokenizer_reference.jsonl.gz"

# The Rust tests' bounds (docs/numerics.md): hidden states and features within TOL absolute;
# normalised embeddings within 1e-4 and cosine >= 0.99999; logits within 1e-4 x scale.
TOL = 1e-4
MIN_COSINE = 0.99999


def reference(folder: Path) -> dict:
    """transformers' outputs written by tools/reference/make_reference.py."""
    from safetensors.numpy import load_file

    return load_file(str(folder / "reference.safetensors"))


def max_abs(got: np.ndarray, want: np.ndarray) -> float:
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))


def min_cosine(got: np.ndarray, want: np.ndarray) -> float:
    g, w = got.astype(np.float64), want.astype(np.float64)
    c = (g * w).sum(1) / (np.linalg.norm(g, axis=1) * np.linalg.norm(w, axis=1))
    return float(c.min())


def _bytes_to_unicode_chars() -> list:
    """GPT-2's printable stand-ins for the 256 bytes, in byte order of the printable ones
    first (the order tokenizer/src/vocab.rs iterates them)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    extra = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]


def tiny_text_model(src: Path, dest: Path) -> Path:
    """A copy of a tiny fixture with a byte-level vocabulary that fits its 96 token ids, as
    tools/clip-cli/tests/common/mod.rs writes it (every byte one token, no merges)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors", "preprocessor_config.json"):
        shutil.copy(src / f, dest / f)
    vocab = {}
    for i, c in enumerate(_bytes_to_unicode_chars()):
        vocab[c] = i % 94
        vocab[c + "</w>"] = (i + 47) % 94
    vocab["<|startoftext|>"] = 94
    vocab["<|endoftext|>"] = 95
    (dest / "vocab.json").write_text(json.dumps(vocab))
    (dest / "merges.txt").write_text("#version: 0.2\n")
    return dest


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    return FIXTURES / "clip-tiny"


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    return clip_rs.CLIPModel(tiny_dir, threads=2)


@pytest.fixture(scope="session")
def tiny_text(tmp_path_factory):
    """The tiny model with a vocabulary its 96 ids can hold, for text calls."""
    d = tiny_text_model(FIXTURES / "clip-tiny", tmp_path_factory.mktemp("tiny-text"))
    return clip_rs.CLIPModel(d, threads=2, batch_size=3)


def full_reference_dirs() -> list:
    """The full-size random ViT-B/32 folders (opt-in: CLIP_FULL_REFERENCE, comma-separated,
    else models/clip-vit-b32-random if present)."""
    env = os.environ.get("CLIP_FULL_REFERENCE")
    names = env.split(",") if env else ["models/clip-vit-b32-random"]
    return [ROOT / n if not os.path.isabs(n) else Path(n) for n in names if n]


def sample_photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A photo-like uint8 RGB image: smooth gradients plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], axis=-1)
    noise = rng.normal(0, 12, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)
