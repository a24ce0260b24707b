"""Embedding collections of shards with clip_rs on Ray Data, in clip-retrieval's layout.

The unit of work is a shard (a webdataset tar as img2dataset writes it, a folder, or a
parquet file with an image-bytes column); each one gives, in the output folder ``out``::

    img_emb/img_emb_{id}.npy          float32 (N, D), normalised; a zero row for a failed image
    text_emb/text_emb_{id}.npy        float32 (N, D) of the captions, when the shard has any
    metadata/metadata_{id}.parquet    key, caption, url, image_path, status, error

exactly as ``clip embed-shards`` writes them (the same rows, bitwise). Each file is written
to a temporary name and renamed; the metadata last, so a shard is done when its metadata
exists, and a worker killed mid-shard leaves nothing that counts: the shard is redone by
Ray's retry of the task, or by the next run, which skips done shards.

    >>> from clip_rs.ray_data import embed_shards
    >>> embed_shards(["s/00000.tar", "s/00001.tar"], "out", model="path/to/model",
    ...              concurrency=2, threads=1)

``ShardEmbedder`` is the callable class this runs in ``Dataset.map_batches`` (one model per
actor); ``ClipEmbedder`` embeds rows of any dataset (``read_webdataset``, ``read_parquet``)
for pipelines that keep their own writer. Needs ``ray[data]`` and ``pyarrow``
(``pip install ray[data] pyarrow``). docs/scale.md has the cluster commands and sizing.

Not here: the numerics (the Rust engine); reading shards without Ray is ``read_shard``.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

import clip_rs

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
#: Image columns of parquet shards looked for, in this order (img2dataset writes ``jpg``).
IMAGE_COLUMNS = ("jpg", "png", "jpeg", "webp", "image", "image_bytes", "img")
SUBDIRS = ("img_emb", "text_emb", "metadata")


def shard_id(path: str) -> str:
    """The name outputs take: the basename without ``.tar``, ``.tar.gz``, ``.tgz`` or
    ``.parquet`` (as ``clip embed-shards`` names them)."""
    name = os.path.basename(os.path.normpath(str(path)))
    for ext in (".tar.gz", ".tgz", ".tar", ".parquet"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    if not name or name.startswith(".") or "\n" in name:
        raise ValueError(f"{path}: cannot name outputs after this shard; rename it")
    return name


def split_key(name: str):
    """``(key, extension)`` as webdataset splits a member name, or None."""
    base = name.rfind("/") + 1
    dot = name.find(".", base)
    if dot <= base:
        return None
    return name[:dot], name[dot + 1:].lower()


def _sample(key: str) -> Dict[str, Any]:
    return {"key": key, "image": None, "caption": None, "url": None, "image_path": None,
            "problem": None}


def _add(s: Dict[str, Any], ext: str, where: str, data: bytes) -> None:
    if ext in IMAGE_EXTS:
        if s["image_path"] is not None:
            return
        s["image_path"] = where
        if ext == "webp":
            s["problem"] = "WebP images are not supported (PNG and JPEG only)"
        else:
            s["image"] = data
    elif ext == "txt":
        s["caption"] = data.decode("utf-8", "replace")
    elif ext == "json":
        try:
            url = json.loads(data).get("url")
            s["url"] = url if isinstance(url, str) else None
        except (ValueError, AttributeError):
            pass


def _finish(s: Dict[str, Any], fallback: str) -> Dict[str, Any]:
    if s["image_path"] is None:
        s["image_path"] = fallback
        s["problem"] = "no image member (jpg, jpeg, png or webp)"
    return s


def _read_tar(path: str, data: Optional[bytes]) -> Iterator[Dict[str, Any]]:
    fileobj = io.BytesIO(data) if data is not None else None
    with tarfile.open(name=None if fileobj else path, fileobj=fileobj, mode="r|*") as tar:
        cur = None
        for m in tar:
            if not m.isfile():
                continue
            sk = split_key(m.name)
            if sk is None:
                continue
            key, ext = sk
            if cur is not None and cur["key"] != key:
                yield _finish(cur, f"{path}/{cur['key']}")
                cur = None
            if cur is None:
                cur = _sample(key)
            if ext in IMAGE_EXTS + ("txt", "json"):
                _add(cur, ext, f"{path}/{m.name}", tar.extractfile(m).read())
        if cur is not None:
            yield _finish(cur, f"{path}/{cur['key']}")


def _read_folder(path: str) -> Iterator[Dict[str, Any]]:
    files = []
    for dirpath, _, names in os.walk(path):
        for n in names:
            full = os.path.join(dirpath, n)
            files.append((os.path.relpath(full, path).replace(os.sep, "/"), full))
    groups: Dict[str, list] = {}
    for rel, full in sorted(files):
        sk = split_key(rel)
        if sk:
            groups.setdefault(sk[0], []).append((sk[1], full))
    for key in sorted(groups):
        members = groups[key]
        if not any(e in IMAGE_EXTS for e, _ in members):
            continue
        s = _sample(key)
        for ext, full in members:
            if ext in IMAGE_EXTS + ("txt", "json"):
                try:
                    with open(full, "rb") as f:
                        _add(s, ext, full, f.read())
                except OSError as e:
                    if ext in IMAGE_EXTS and s["image_path"] is None:
                        s["image_path"], s["problem"] = full, str(e)
        yield _finish(s, "")


def _text(v: Any) -> Optional[str]:
    if v is None or isinstance(v, float):  # null, or NaN in a partly filled column
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _read_parquet(path: str, data: Optional[bytes], image_column: Optional[str],
                  caption_column: Optional[str], key_column: Optional[str]):
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data) if data is not None else path)
    names = table.column_names
    if image_column is None:
        image_column = next((c for c in IMAGE_COLUMNS if c in names), None)
        if image_column is None:
            raise ValueError(f"{path}: no image column (looked for {', '.join(IMAGE_COLUMNS)})")
    for c in (image_column, caption_column, key_column):
        if c is not None and c not in names:
            raise ValueError(f"{path}: no column {c!r}")
    caption_column = caption_column or ("caption" if "caption" in names else None)
    key_column = key_column or ("key" if "key" in names else None)
    col = lambda c: table.column(c).to_pylist() if c else [None] * table.num_rows  # noqa: E731
    images, caps, keys = col(image_column), col(caption_column), col(key_column)
    urls = col("url" if "url" in names else None)
    for i in range(table.num_rows):
        s = _sample(_text(keys[i]) or f"{i:09d}")
        s["caption"], s["url"], s["image_path"] = _text(caps[i]), _text(urls[i]), f"{path}#{i}"
        img = images[i]
        if isinstance(img, dict):
            img = img.get("bytes")
        if isinstance(img, (bytes, bytearray)):
            s["image"] = bytes(img)
        else:
            s["problem"] = "no image (null)" if img is None else "the image column is not bytes"
        yield s


def read_shard(path: str, data: Optional[bytes] = None, *, image_column: Optional[str] = None,
               caption_column: Optional[str] = None,
               key_column: Optional[str] = None) -> List[Dict[str, Any]]:
    """The samples of a shard, in order: dicts with ``key``, ``image`` (encoded bytes or
    None), ``caption``, ``url``, ``image_path`` and ``problem`` (why the sample cannot be
    embedded, known before decoding). ``data``: the shard's bytes, if already read."""
    path = str(path)
    if data is None and os.path.isdir(path):
        return list(_read_folder(path))
    if path.lower().endswith(".parquet"):
        return list(_read_parquet(path, data, image_column, caption_column, key_column))
    return list(_read_tar(path, data))


def _paths(out: str, sid: str) -> Dict[str, str]:
    return {k: os.path.join(out, k, f"{k}_{sid}.{'parquet' if k == 'metadata' else 'npy'}")
            for k in SUBDIRS}


def is_done(out: str, path: str) -> bool:
    """Whether a shard's outputs are complete in ``out``."""
    p = _paths(str(out), shard_id(path))
    return os.path.isfile(p["metadata"]) and os.path.isfile(p["img_emb"])


def _atomic(path: str, write: Callable[[Any], None]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _clear_partial(out: str, sid: str) -> None:
    for kind in SUBDIRS:
        d = os.path.join(out, kind)
        for name in os.listdir(d):
            if name.startswith(f"{kind}_{sid}.") and (kind != "metadata" or ".tmp" in name):
                os.remove(os.path.join(d, name))


def _embed_images(model: "clip_rs.CLIPModel", images: List[bytes]):
    """Embeddings of encoded images and, per image, an error or None. A batch that fails
    is redone image by image (each row is bitwise the same in any batch)."""
    try:
        return model.embed_images(images), [None] * len(images)
    except clip_rs.ClipError:
        pass
    rows, errors = [], []
    for i, b in enumerate(images):
        try:
            rows.append(model.embed_images([b])[0])
            errors.append(None)
        except clip_rs.ClipError as e:
            rows.append(np.zeros(model.embed_dim, np.float32))
            errors.append(str(e).removeprefix("image 0: "))
    return np.stack(rows), errors


def embed_shard(model: "clip_rs.CLIPModel", path: str, out: str, data: Optional[bytes] = None,
                *, batch_size: int = 32, text: bool = True, **columns: Any) -> Dict[str, Any]:
    """Embeds one shard into ``out`` (see the module doc) unless it is done or another
    process holds it; returns ``{"shard", "images", "failed", "status"}`` with status
    ``"done"``, ``"skipped"`` (already done) or ``"busy"``."""
    out, path = str(out), str(path)
    sid = shard_id(path)
    summary = {"shard": sid, "images": 0, "failed": 0, "status": "skipped"}
    if is_done(out, path):
        return summary
    for k in SUBDIRS + (".locks",):
        os.makedirs(os.path.join(out, k), exist_ok=True)
    with open(os.path.join(out, ".locks", sid), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return dict(summary, status="busy")
        # The holder's pid, for people (and the kill test) looking for who works on it.
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        if is_done(out, path):
            return summary
        _clear_partial(out, sid)
        samples = read_shard(path, data, **columns)
        _write_shard(model, samples, _paths(out, sid), batch_size, text)
    n_failed = sum(s["problem"] is not None for s in samples)
    return dict(summary, images=len(samples), failed=n_failed, status="done")


def _write_shard(model, samples, paths, batch_size, text):
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = model.embed_dim
    img = np.zeros((len(samples), d), np.float32)
    for start in range(0, len(samples), batch_size):
        part = samples[start:start + batch_size]
        ok = [i for i, s in enumerate(part) if s["problem"] is None]
        if ok:
            rows, errors = _embed_images(model, [part[i]["image"] for i in ok])
            for i, row, err in zip(ok, rows, errors):
                img[start + i] = row
                part[i]["problem"] = err
        for smp in part:
            smp["image"] = None  # the encoded bytes are no longer needed
    cap = [i for i, s in enumerate(samples) if s["caption"] is not None]
    if text and cap:
        txt = np.zeros((len(samples), d), np.float32)
        # clip-retrieval cuts long captions too (clip.tokenize(truncate=True)).
        txt[cap] = model.embed_texts([samples[i]["caption"] for i in cap], truncate=True,
                                     batch_size=batch_size)
        _atomic(paths["text_emb"], lambda f: np.save(f, txt))
    _atomic(paths["img_emb"], lambda f: np.save(f, img))
    strings = lambda name: pa.array([s[name] for s in samples], pa.string())  # noqa: E731
    table = pa.table({
        "key": strings("key"), "caption": strings("caption"), "url": strings("url"),
        "image_path": strings("image_path"),
        "status": pa.array(["ok" if s["problem"] is None else "error" for s in samples]),
        "error": strings("problem"),
    })
    _atomic(paths["metadata"], lambda f: pq.write_table(table, f))


def _load_model(model: Any, threads: int, batch_size: int) -> "clip_rs.CLIPModel":
    if isinstance(model, clip_rs.CLIPModel):
        return model
    if isinstance(model, str) and model.startswith("random:"):
        return clip_rs.CLIPModel.random(model[len("random:"):], threads=threads,
                                        batch_size=batch_size)
    return clip_rs.CLIPModel(model, threads=threads, batch_size=batch_size)


class ShardEmbedder:
    """A callable class for ``Dataset.map_batches`` over a dataset of shards, one row per
    shard: ``path`` (and ``bytes``, as ``ray.data.read_binary_files(...,
    include_paths=True)`` gives them; without it the shard is read from ``path``). The model
    is loaded once per actor. Each call embeds its shards into ``out`` and returns one row
    per shard: ``shard``, ``images``, ``failed``, ``status``.

    ``model``: a model folder, a Hugging Face cache name, or ``"random:ViT-B/32"`` (random
    weights, for tests and benchmarks). ``threads``: the model's threads (match the actor's
    ``num_cpus``)."""

    def __init__(self, model: Any, out: str, *, threads: int = 1, batch_size: int = 32,
                 text: bool = True, image_column: Optional[str] = None,
                 caption_column: Optional[str] = None, key_column: Optional[str] = None):
        self.model = _load_model(model, threads, batch_size)
        self.out, self.batch_size, self.text = str(out), batch_size, text
        self.columns = {"image_column": image_column, "caption_column": caption_column,
                        "key_column": key_column}

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        paths = list(batch["path"])
        data = batch.get("bytes")
        rows = []
        for i, p in enumerate(paths):
            try:
                rows.append(embed_shard(self.model, p, self.out,
                                        None if data is None else bytes(data[i]),
                                        batch_size=self.batch_size, text=self.text,
                                        **self.columns))
            except Exception as e:  # a broken shard fails alone; the others go on
                rows.append({"shard": shard_id(p), "images": 0, "failed": 0,
                             "status": f"error: {type(e).__name__}: {e}"})
        return {k: np.array([r[k] for r in rows]) for k in ("shard", "images", "failed",
                                                              "status")}


class ClipEmbedder:
    """A callable class for ``Dataset.map_batches`` over rows of samples, for pipelines that
    write their own outputs: ``ray.data.read_webdataset(paths, decoder=None)`` (columns
    ``jpg``/``png``, ``txt``), ``read_parquet`` (img2dataset's ``jpg``, ``caption``). Adds
    ``img_emb`` (float32, normalised; zeros where the image failed), ``status``, ``error``
    and, with ``caption_column``, ``text_emb``."""

    def __init__(self, model: Any, *, image_columns: Sequence[str] = ("jpg", "png", "jpeg"),
                 caption_column: Optional[str] = None, threads: int = 1,
                 batch_size: int = 32):
        self.model = _load_model(model, threads, batch_size)
        self.image_columns, self.caption_column = list(image_columns), caption_column

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        n = len(next(iter(batch.values())))
        images: List[Optional[bytes]] = [None] * n
        for c in self.image_columns:
            for i, v in enumerate(batch.get(c, [None] * n)):
                # A missing member is None, or NaN where a column is only partly filled.
                if images[i] is None and isinstance(v, (bytes, bytearray, memoryview,
                                                        np.ndarray)) and len(v):
                    images[i] = bytes(v)
        img = np.zeros((n, self.model.embed_dim), np.float32)
        errors: List[Optional[str]] = ["no image" if b is None else None for b in images]
        ok = [i for i, b in enumerate(images) if b is not None]
        if ok:
            rows, errs = _embed_images(self.model, [images[i] for i in ok])
            for i, row, e in zip(ok, rows, errs):
                img[i], errors[i] = row, e
        out = dict(batch)
        out["img_emb"] = img
        out["status"] = np.array(["ok" if e is None else "error" for e in errors])
        out["error"] = np.array(errors, dtype=object)
        if self.caption_column:
            caps = [_text(c) for c in batch[self.caption_column]]
            txt = np.zeros_like(img)
            has = [i for i, c in enumerate(caps) if c is not None]
            if has:
                txt[has] = self.model.embed_texts([caps[i] for i in has], truncate=True)
            out["text_emb"] = txt
        return out


def embed_shards(paths: Sequence[str], out: str, *, model: Any, concurrency: int = 1,
                 threads: int = 1, batch_size: int = 32, text: bool = True,
                 read_bytes: Optional[bool] = None, attempts: int = 3,
                 **columns: Any) -> List[Dict[str, Any]]:
    """Embeds shards on the Ray cluster (``ray.init()`` first, or it starts a local one)
    with ``concurrency`` actors of ``threads`` CPUs each; returns one summary per shard
    embedded. Files are read by ``ray.data.read_binary_files`` (any filesystem pyarrow
    reads; ``read_bytes=False``, or a folder among the shards: by path, from a filesystem
    every node sees). ``out`` must be a folder every node writes to (NFS, a shared disk).
    Killed actors are restarted and their shard redone by Ray; shards still missing after
    that are given to a new pass, up to ``attempts`` passes in all. A shard that cannot be
    read (not a tar, a cut archive) fails alone: the others are done, then a RuntimeError
    names it with the reason."""
    import ray

    paths = [str(p) for p in paths]
    ids = [shard_id(p) for p in paths]
    if len(set(ids)) != len(ids):
        raise ValueError("two shards have the same name; their outputs would collide")
    os.makedirs(out, exist_ok=True)
    if read_bytes is None:
        read_bytes = not any(os.path.isdir(p) for p in paths)
    results: List[Dict[str, Any]] = []
    errors: Dict[str, str] = {}
    for _ in range(attempts):
        todo = [p for p in paths if not is_done(out, p)]
        if not todo:
            break
        if read_bytes:
            # Reading is I/O: no CPU of its own, so that it runs beside actors holding them all.
            ds = ray.data.read_binary_files(todo, include_paths=True, num_cpus=0)
        else:
            ds = ray.data.from_items([{"path": p} for p in todo])
        ds = ds.map_batches(
            ShardEmbedder, batch_size=1, num_cpus=threads,
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            fn_constructor_args=(model, str(out)),
            fn_constructor_kwargs=dict(threads=threads, batch_size=batch_size, text=text,
                                       **columns))
        # Ray Data restarts a lost actor and retries its task (max_restarts and
        # max_task_retries are -1 for actor pools by default).
        try:
            rows = ds.take_all()
        except Exception as e:  # an actor lost beyond Ray's retries: the next pass redoes it
            errors.update({shard_id(p): f"{type(e).__name__}" for p in todo})
            continue
        results += [r for r in rows if r["status"] == "done"]
        errors.update({str(r["shard"]): str(r["status"]) for r in rows
                       if str(r["status"]).startswith("error")})
    missing = [p for p in paths if not is_done(out, p)]
    if missing:
        raise RuntimeError(f"{len(missing)} shard(s) not done after {attempts} passes: "
                           + "; ".join(f"{p} ({errors.get(shard_id(p), 'unknown')})"
                                       for p in missing))
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in results]
