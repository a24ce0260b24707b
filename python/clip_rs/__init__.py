"""clip_rs: OpenAI's CLIP on the CPU without PyTorch, with PyTorch's numbers.

Image and text embeddings, tokenization as ``clip.tokenize``, preprocessing as
``CLIPImageProcessor``, similarity and zero-shot classification, all computed by the
``clip-rs`` Rust engine with the GIL released (one model can be shared by Python threads).

    >>> import clip_rs
    >>> model = clip_rs.CLIPModel("openai/clip-vit-base-patch32", threads=2)
    >>> img = model.embed_images(["cat.jpg"])              # (1, 512) float32, normalised
    >>> txt = model.embed_texts(["a photo of a cat", "a diagram"])
    >>> model.logits(img, txt)                               # logits_per_image, (1, 2)

Not here: the numerics (Rust, ``crates/clip``); this module converts PIL images, wraps the
native calls with documented signatures, and adds the NumPy-only helpers.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from . import _native
from ._native import ClipError

__all__ = [
    "CLIPModel",
    "ClipError",
    "IMAGENET_TEMPLATES",
    "Preprocessor",
    "load",
    "tokenize",
]
__version__ = "0.1.0"

#: The CLIP paper's 80 ImageNet prompt templates (``{}`` is the label).
IMAGENET_TEMPLATES: tuple = tuple(_native.IMAGENET_TEMPLATES)

ImageItem = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, np.ndarray, Any]


def _is_pil(obj: Any) -> bool:
    # PIL is not imported here (import time); its images are recognised by their module.
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "getbands")


def _pil_to_rgb(img: Any) -> np.ndarray:
    """A PIL image as uint8 RGB ``(H, W, 3)``, converted as transformers 5's
    ``convert_to_rgb`` does: with an alpha band or a transparency key, composited over
    opaque white (``Image.alpha_composite``); otherwise ``convert("RGB")``."""
    from PIL import Image

    if "A" in img.getbands() or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba).convert("RGB")
    elif img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def _items(items: Any) -> Any:
    """PIL images of a list replaced by their RGB arrays; everything else passed through
    (the native module checks and reports it)."""
    if isinstance(items, (str, bytes, np.ndarray)) or _is_pil(items):
        return items
    if not isinstance(items, (list, tuple)):
        items = list(items)
    if any(_is_pil(i) for i in items):
        return [_pil_to_rgb(i) if _is_pil(i) else i for i in items]
    return items


def _embeddings(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype != np.float32 or a.ndim != 2:
        raise ClipError(f"{name}: an array of dtype {a.dtype} and shape {a.shape}; "
                        "give float32 embeddings (N, D)")
    return a


def tokenize(texts: Union[str, Sequence[str]], context_length: int = 77,
             truncate: bool = False) -> np.ndarray:
    """Token ids as ``clip.tokenize`` gives them, with CLIP's vocabulary: int64
    ``(N, context_length)``, each row SOT, ids, EOT, zero padding.

    A text longer than the context raises ``ClipError`` unless ``truncate=True``, which cuts
    it and ends it with EOT."""
    return _native.tokenize(texts, context_length, truncate)


class Preprocessor:
    """CLIP's image preprocessing alone, bit-exact with Pillow + ``CLIPImageProcessor``:
    decode, convert to RGB, resize the shortest edge (bicubic), center crop, rescale and
    normalise. Batches are preprocessed in parallel in Rust with the GIL released.

    Args:
        shortest_edge: the size the shorter side is resized to.
        crop_size: ``(height, width)`` of the center crop, or one int for a square.
        image_mean, image_std: per-channel normalisation (OpenAI CLIP's by default).
        drop_alpha: ignore transparency as OpenAI's pipeline and transformers 4 do (default:
            composite over white, as transformers 5 does).
        exif_transpose: apply the EXIF orientation (off, as in the reference pipeline).
        threads: threads for a batch (0: one per core).
    """

    def __init__(self, shortest_edge: int = 224, crop_size: Union[int, tuple] = 224, *,
                 image_mean: Optional[Sequence[float]] = None,
                 image_std: Optional[Sequence[float]] = None,
                 drop_alpha: bool = False, exif_transpose: bool = False,
                 threads: int = 0) -> None:
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        self._p = _native.Preprocessor(
            shortest_edge, tuple(crop_size), image_mean=image_mean, image_std=image_std,
            drop_alpha=drop_alpha, exif_transpose=exif_transpose, threads=threads)

    @classmethod
    def from_pretrained(cls, folder: Union[str, "os.PathLike[str]"], *,
                        threads: int = 0) -> "Preprocessor":
        """The settings of ``folder/preprocessor_config.json`` (CLIP's if it has none)."""
        self = cls.__new__(cls)
        self._p = _native.Preprocessor.from_pretrained(folder, threads=threads)
        return self

    @property
    def crop_size(self) -> tuple:
        """``(height, width)`` of the output."""
        return self._p.crop_size

    def __call__(self, items: Sequence[ImageItem]) -> np.ndarray:
        """Float32 ``(N, 3, H, W)`` pixel values (see :meth:`CLIPModel.embed_images` for
        the kinds of items)."""
        return self._p.preprocess(_items(items))

    preprocess = __call__


class CLIPModel:
    """A CLIP model (ViT image encoder and text transformer) loaded from safetensors.

    ``CLIPModel(model)`` finds the model as the ``clip`` program does: ``model`` is a folder
    (``model.safetensors`` with Hugging Face or OpenAI key names, and optionally
    ``config.json``, ``preprocessor_config.json``, ``vocab.json`` + ``merges.txt``) or a
    repository name in the local Hugging Face cache (``"openai/clip-vit-base-patch32"``;
    nothing is downloaded). With ``model=None``: the folder named by ``CLIP_MODEL``, then
    openai/clip-vit-base-patch32 in the cache.

    Args:
        threads: threads for every call (0: one per core).
        precision: ``"f32"``, ``"bf16"`` or ``"int8"`` weights (default: the file's; int8
            quantises linear weights per output channel and activations per row).
        batch_size: inputs per forward pass in list calls (default 32); results do not
            depend on it.
        validate: refuse NaN or Inf weights at load.
        bf16_kernel: with bf16 weights, ``"convert"`` (f32 arithmetic) or ``"dot"``
            (activations rounded to bf16 too, AVX512-BF16); default: ``CLIP_BF16``, else the
            faster on this CPU by a short measurement.

    One model can be shared by Python threads: every call releases the GIL, and results are
    bitwise the same whatever the thread count and batch size.
    """

    def __init__(self, model: Union[str, "os.PathLike[str]", None] = None, *,
                 threads: int = 0, precision: Optional[str] = None,
                 batch_size: Optional[int] = None, validate: bool = False,
                 bf16_kernel: Optional[str] = None) -> None:
        self._m = _native.CLIPModel(model, threads=threads, precision=precision,
                                    batch_size=batch_size, validate=validate,
                                    bf16_kernel=bf16_kernel)

    @classmethod
    def from_pretrained(cls, model: Union[str, "os.PathLike[str]", None] = None,
                        **kwargs: Any) -> "CLIPModel":
        """Same as ``CLIPModel(model, **kwargs)`` (the transformers spelling)."""
        return cls(model, **kwargs)

    @classmethod
    def random(cls, config: str = "ViT-B/32", *, seed: int = 0, threads: int = 0,
               precision: Optional[str] = None,
               batch_size: Optional[int] = None) -> "CLIPModel":
        """A model with seeded random weights, for trying the API and for benchmarks (its
        embeddings mean nothing). ``config``: ``"ViT-B/32"``, ``"ViT-B/16"``,
        ``"ViT-L/14"``, ``"ViT-L/14-336"`` or a ``config.json`` path."""
        self = cls.__new__(cls)
        self._m = _native.CLIPModel.random(config, seed=seed, threads=threads,
                                           precision=precision, batch_size=batch_size)
        return self

    # ---- embeddings ----

    def embed_images(self, items: Sequence[ImageItem], *, batch_size: Optional[int] = None,
                     normalize: bool = True) -> np.ndarray:
        """Image embeddings, float32 ``(N, D)``, L2-normalised unless ``normalize=False``
        (then the raw projections, HF's ``get_image_features``).

        Items (mixed freely): paths (``str`` or ``os.PathLike``) of PNG or JPEG files;
        encoded files as ``bytes``; uint8 RGB arrays ``(H, W, 3)``; PIL images (converted
        in memory, as transformers does). Decoding and preprocessing run in parallel."""
        return self._m.embed_images(_items(items), batch_size=batch_size, normalize=normalize)

    def embed_texts(self, texts: Union[str, Sequence[str]], *, truncate: bool = False,
                    batch_size: Optional[int] = None, normalize: bool = True) -> np.ndarray:
        """Text embeddings, float32 ``(N, D)``, L2-normalised unless ``normalize=False``.
        Texts are tokenized as ``clip.tokenize``; one longer than the context raises
        ``ClipError`` unless ``truncate=True``."""
        return self._m.embed_texts(texts, truncate=truncate, batch_size=batch_size,
                                   normalize=normalize)

    def tokenize(self, texts: Union[str, Sequence[str]], context_length: Optional[int] = None,
                 *, truncate: bool = False) -> np.ndarray:
        """Token ids with this model's vocabulary, int64 ``(N, context_length)`` (default:
        the model's context, 77), as ``clip.tokenize``."""
        return self._m.tokenize(texts, context_length, truncate=truncate)

    def preprocess(self, items: Sequence[ImageItem]) -> np.ndarray:
        """Float32 ``(N, 3, S, S)`` pixel values with this model's preprocessing, as
        ``CLIPImageProcessor(...)["pixel_values"]``."""
        return self._m.preprocess(_items(items))

    # ---- comparing ----

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarities ``a @ b.T`` of two sets of normalised embeddings, ``(N, M)``."""
        return _embeddings(a, "a") @ _embeddings(b, "b").T

    def logits(self, image_embeds: np.ndarray, text_embeds: np.ndarray) -> np.ndarray:
        """CLIP's ``logits_per_image``, ``exp(logit_scale) * image_embeds @ text_embeds.T``
        (its transpose is ``logits_per_text``)."""
        return np.float32(self._m.logit_scale_exp) * self.similarity(image_embeds, text_embeds)

    def probs(self, image_embeds: np.ndarray, text_embeds: np.ndarray) -> np.ndarray:
        """Per image, the softmax of its logits over the texts, ``(N, M)``."""
        z = self.logits(image_embeds, text_embeds)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def zero_shot(self, images: Sequence[ImageItem], labels: Sequence[str],
                  templates: Union[str, Sequence[str]] = ("a photo of a {}.",), *,
                  truncate: bool = False, batch_size: Optional[int] = None) -> np.ndarray:
        """Zero-shot probabilities, float32 ``(N images, L labels)``: each label is put in
        every template at ``{}`` (e.g. ``IMAGENET_TEMPLATES``), a label's embedding is the
        renormalised mean of its prompts', and each image's row is the softmax of its
        logits against the labels."""
        return self._m.zero_shot(_items(images), labels, templates, truncate=truncate,
                                 batch_size=batch_size)

    def class_embeddings(self, labels: Sequence[str],
                         templates: Union[str, Sequence[str]] = ("a photo of a {}.",), *,
                         truncate: bool = False) -> np.ndarray:
        """The normalised label embeddings ``(L, D)`` that :meth:`zero_shot` compares
        images with (open_clip's ``build_zero_shot_classifier``, transposed)."""
        return self._m.class_embeddings(labels, templates, truncate=truncate)

    # ---- numerics: raw features and hidden states ----

    def image_features(self, pixel_values: np.ndarray) -> np.ndarray:
        """Raw projections of float32 pixel values ``(N, 3, S, S)``: HF's
        ``get_image_features``."""
        return self._m.image_features(pixel_values)

    def text_features(self, input_ids: np.ndarray) -> np.ndarray:
        """Raw projections of int64 token ids ``(N, L)`` (as :func:`tokenize` gives them):
        HF's ``get_text_features``."""
        return self._m.text_features(np.asarray(input_ids, dtype=np.int64))

    def vision_forward(self, pixel_values: np.ndarray) -> dict:
        """The image tower with every layer: ``hidden_states`` (a tuple of ``(N, T, C)``,
        index 0 after the pre-layer-norm, as HF's ``output_hidden_states``),
        ``pooler_output`` ``(N, C)``, ``image_features`` ``(N, D)``."""
        return self._m.vision_forward(pixel_values)

    def text_forward(self, input_ids: np.ndarray) -> dict:
        """The text tower over every position: ``hidden_states`` (a tuple of ``(N, L, C)``,
        index 0 the embeddings), ``last_hidden_state`` ``(N, L, C)``, ``pooler_output``
        ``(N, C)`` (at each row's EOT), ``text_features`` ``(N, D)``."""
        return self._m.text_forward(np.asarray(input_ids, dtype=np.int64))

    # ---- what the model is ----

    @property
    def embed_dim(self) -> int:
        """Width of the embeddings (512 for ViT-B/32)."""
        return self._m.embed_dim

    @property
    def image_size(self) -> int:
        """Side of the square input image (224 for ViT-B/32)."""
        return self._m.image_size

    @property
    def context_length(self) -> int:
        """Token positions of the text tower (77)."""
        return self._m.context_length

    @property
    def logit_scale(self) -> float:
        """The learned temperature as stored (its exp scales cosines into logits)."""
        return self._m.logit_scale

    @property
    def threads(self) -> int:
        """Threads of the model's pool."""
        return self._m.threads

    @property
    def batch_size(self) -> int:
        """The default inputs per forward pass."""
        return self._m.batch_size

    @property
    def precision(self) -> str:
        """``"f32"``, ``"bf16"`` or ``"int8"``: how the weights are kept."""
        return self._m.precision

    @property
    def bf16_kernel(self) -> Optional[str]:
        """``"convert"`` or ``"dot"`` with bf16 weights, else None."""
        return self._m.bf16_kernel

    @property
    def kernels(self) -> str:
        """The SIMD kernel set in use (e.g. ``"avx512"``)."""
        return self._m.kernels

    @property
    def weights_path(self) -> Optional[str]:
        """The weight file, ``None`` for random weights."""
        p = self._m.weights_path
        return None if p is None else os.fspath(p)

    def __repr__(self) -> str:
        return repr(self._m)


def load(model: Union[str, "os.PathLike[str]", None] = None, **kwargs: Any) -> CLIPModel:
    """``CLIPModel(model, **kwargs)``."""
    return CLIPModel(model, **kwargs)
