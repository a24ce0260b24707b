"""Type stubs of the native module clip_rs._native (Rust, PyO3). Use the documented wrappers
in clip_rs instead; these are what they call.

Not here: docstrings for users (clip_rs/__init__.py)."""

import os
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "os.PathLike[str]"]
_Item = Union[_Path, bytes, bytearray, memoryview, npt.NDArray[np.uint8]]
_Texts = Union[str, Sequence[str]]

IMAGENET_TEMPLATES: list[str]

class ClipError(ValueError): ...

def tokenize(texts: _Texts, context_length: int = 77, truncate: bool = False) -> npt.NDArray[np.int64]: ...

class Preprocessor:
    def __init__(
        self,
        shortest_edge: int = 224,
        crop_size: Tuple[int, int] = (224, 224),
        *,
        image_mean: Optional[Sequence[float]] = None,
        image_std: Optional[Sequence[float]] = None,
        drop_alpha: bool = False,
        exif_transpose: bool = False,
        threads: int = 0,
    ) -> None: ...
    @staticmethod
    def from_pretrained(folder: _Path, *, threads: int = 0) -> "Preprocessor": ...
    def preprocess(self, items: Sequence[_Item]) -> npt.NDArray[np.float32]: ...
    @property
    def crop_size(self) -> Tuple[int, int]: ...

class CLIPModel:
    def __init__(
        self,
        model: Optional[_Path] = None,
        *,
        threads: int = 0,
        precision: Optional[str] = None,
        batch_size: Optional[int] = None,
        validate: bool = False,
        bf16_kernel: Optional[str] = None,
    ) -> None: ...
    @staticmethod
    def random(
        config: str = "ViT-B/32",
        *,
        seed: int = 0,
        threads: int = 0,
        precision: Optional[str] = None,
        batch_size: Optional[int] = None,
    ) -> "CLIPModel": ...
    def embed_images(
        self, items: Sequence[_Item], *, batch_size: Optional[int] = None, normalize: bool = True
    ) -> npt.NDArray[np.float32]: ...
    def embed_texts(
        self,
        texts: _Texts,
        *,
        truncate: bool = False,
        batch_size: Optional[int] = None,
        normalize: bool = True,
    ) -> npt.NDArray[np.float32]: ...
    def tokenize(
        self, texts: _Texts, context_length: Optional[int] = None, *, truncate: bool = False
    ) -> npt.NDArray[np.int64]: ...
    def preprocess(self, items: Sequence[_Item]) -> npt.NDArray[np.float32]: ...
    def image_features(self, pixel_values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...
    def text_features(self, input_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]: ...
    def vision_forward(self, pixel_values: npt.NDArray[np.float32]) -> dict[str, Any]: ...
    def text_forward(self, input_ids: npt.NDArray[np.int64]) -> dict[str, Any]: ...
    def zero_shot(
        self,
        items: Sequence[_Item],
        labels: _Texts,
        templates: _Texts,
        *,
        truncate: bool = False,
        batch_size: Optional[int] = None,
    ) -> npt.NDArray[np.float32]: ...
    def class_embeddings(
        self, labels: _Texts, templates: _Texts, *, truncate: bool = False
    ) -> npt.NDArray[np.float32]: ...
    @property
    def embed_dim(self) -> int: ...
    @property
    def image_size(self) -> int: ...
    @property
    def context_length(self) -> int: ...
    @property
    def logit_scale(self) -> float: ...
    @property
    def logit_scale_exp(self) -> float: ...
    @property
    def threads(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def precision(self) -> str: ...
    @property
    def bf16_kernel(self) -> Optional[str]: ...
    @property
    def kernels(self) -> str: ...
    @property
    def weights_path(self) -> Optional[str]: ...
