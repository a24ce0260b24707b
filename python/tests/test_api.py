"""The package's surface: the stubs name every native method and property, the wrappers
expose them, and the package is typed (py.typed).

Not here: behaviour (the other test files)."""

import ast
from pathlib import Path

import clip_rs
from clip_rs import _native


def stub_names(cls: str) -> set:
    tree = ast.parse((Path(clip_rs.__file__).parent / "_native.pyi").read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    raise AssertionError(f"no class {cls} in _native.pyi")


def public(obj) -> set:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_stubs_cover_the_native_module():
    for cls in ("CLIPModel", "Preprocessor"):
        assert public(getattr(_native, cls)) <= stub_names(cls), cls
    assert (Path(clip_rs.__file__).parent / "py.typed").is_file()


def test_wrappers_expose_every_native_call():
    native = public(_native.CLIPModel) - {"random", "logit_scale_exp"}
    assert native <= public(clip_rs.CLIPModel)
    assert set(clip_rs.__all__) <= public(clip_rs)
    assert issubclass(clip_rs.ClipError, ValueError)
