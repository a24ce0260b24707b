"""clip_rs.ray_data on a local Ray cluster (ray.init(num_cpus=2)): 4 generated webdataset
shards of 64 images (JPEG and PNG, captions on two in three, one truncated JPEG) give
clip-retrieval's layout with every row bitwise equal to a single-process embed_images /
embed_texts on the same files, read back independently (tarfile, pyarrow), and the same
rows from a folder and a parquet file; ClipEmbedder over read_webdataset and read_parquet;
a broken shard failing alone; an actor SIGKILLed in the middle of a shard leaves every key
exactly once in the final output.

Needs ray[data] and pyarrow (.ci/run's Ray step installs them); skipped without them
unless CLIP_REQUIRE_RAY=1, which makes their absence a failure.

Not here: the `clip embed-shards` program (tools/clip-cli/tests/embed_shards.rs)."""

import importlib.util
import io
import os
import signal
import tarfile
import threading
import time

import numpy as np
import pytest

from conftest import FIXTURES, ROOT, tiny_text_model

if os.environ.get("CLIP_REQUIRE_RAY") != "1":
    pytest.importorskip("ray")
    pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402
import ray  # noqa: E402

import clip_rs  # noqa: E402
from clip_rs import ray_data  # noqa: E402


def make_shards(out, **kw):
    spec = importlib.util.spec_from_file_location("make_shards", ROOT / "tools" / "make_shards.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(kw.get("shards", 4)):
        p = out / f"{s:05d}.tar"
        mod.write_shard(p, s, kw.get("per_shard", 64), kw.get("size", 160), kw.get("corrupt", False))
        paths.append(str(p))
    return paths


def members(path):
    """(key, image bytes, extension, caption) per sample, read with tarfile."""
    samples = {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            key, ext = m.name.split(".", 1)
            s = samples.setdefault(key, {"key": key, "caption": None})
            data = tar.extractfile(m).read()
            if ext in ("jpg", "png"):
                s["image"], s["ext"] = data, ext
            elif ext == "txt":
                s["caption"] = data.decode()
    return list(samples.values())


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_shards_layout_bitwise_equal_to_embed_images(cluster, tmp_path):
    model_dir = tiny_text_model(FIXTURES / "clip-tiny", tmp_path / "model")
    shards = make_shards(tmp_path / "shards", corrupt=True)
    out = tmp_path / "out"
    done = ray_data.embed_shards(shards, str(out), model=str(model_dir), concurrency=2,
                                 threads=1, batch_size=7)
    assert sorted(r["shard"] for r in done) == ["00000", "00001", "00002", "00003"]
    assert sum(r["failed"] for r in done) == 1

    ref = clip_rs.CLIPModel(model_dir, threads=2)
    d = ref.embed_dim
    for path in shards:
        sid = os.path.basename(path)[:-4]
        samples = members(path)
        meta = pq.read_table(out / "metadata" / f"metadata_{sid}.parquet").to_pylist()
        img = np.load(out / "img_emb" / f"img_emb_{sid}.npy")
        txt = np.load(out / "text_emb" / f"text_emb_{sid}.npy")
        assert img.dtype == np.float32 and img.shape == (64, d) and txt.shape == (64, d)
        assert [m["key"] for m in meta] == [s["key"] for s in samples]
        assert [m["caption"] for m in meta] == [s["caption"] for s in samples]
        corrupt = sid == "00001"
        good = [i for i in range(64) if not (corrupt and i == 5)]
        want = ref.embed_images([samples[i]["image"] for i in good])
        assert np.array_equal(img[good], want), f"{sid}: differs from embed_images"
        if corrupt:
            bad = meta[5]
            assert bad["status"] == "error" and "JPEG" in bad["error"], bad
            assert bad["image_path"].endswith("/000010005.jpg")
            assert not img[5].any()
        assert all(meta[i]["status"] == "ok" and meta[i]["error"] is None for i in good)
        cap = [i for i, s in enumerate(samples) if s["caption"] is not None]
        assert 0 < len(cap) < 64
        assert np.array_equal(txt[cap], ref.embed_texts([samples[i]["caption"] for i in cap],
                                                        truncate=True))
        assert not txt[[i for i in range(64) if i not in cap]].any()
        assert np.allclose(np.linalg.norm(img[good], axis=1), 1, atol=1e-5)

    # Shard 2 as a folder and as a parquet file (img2dataset's columns) gives the same rows.
    import pyarrow as pa

    folder = tmp_path / "folder-2"
    folder.mkdir()
    samples = members(shards[2])
    for smp in samples:
        (folder / f"{smp['key']}.{smp['ext']}").write_bytes(smp["image"])
        if smp["caption"] is not None:
            (folder / f"{smp['key']}.txt").write_text(smp["caption"])
    pq.write_table(pa.table({"key": [x["key"] for x in samples],
                             "caption": [x["caption"] for x in samples],
                             "jpg": [x["image"] for x in samples]}), tmp_path / "table-2.parquet")
    ray_data.embed_shards([str(folder), str(tmp_path / "table-2.parquet")], str(out),
                          model=str(model_dir), concurrency=2, threads=1)
    for kind in ("img_emb", "text_emb"):
        want = np.load(out / kind / f"{kind}_00002.npy")
        for sid in ("folder-2", "table-2"):
            assert np.array_equal(np.load(out / kind / f"{kind}_{sid}.npy"), want), (kind, sid)
    for sid in ("folder-2", "table-2"):
        meta = pq.read_table(out / "metadata" / f"metadata_{sid}.parquet").to_pylist()
        assert [m["key"] for m in meta] == [x["key"] for x in samples]
        assert [m["caption"] for m in meta] == [x["caption"] for x in samples]

    # A second run finds everything done and writes nothing.
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    assert ray_data.embed_shards(shards + [str(folder)], str(out), model=str(model_dir),
                                 concurrency=1) == []
    assert stamp == {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}


def test_row_embedder_over_read_webdataset_and_read_parquet(cluster, tmp_path):
    model_dir = tiny_text_model(FIXTURES / "clip-tiny", tmp_path / "model")
    shard = make_shards(tmp_path / "shards", shards=2, per_shard=12, corrupt=True)[1]
    samples = members(shard)
    ds = ray.data.read_webdataset([shard], decoder=None)
    rows = ds.map_batches(ray_data.ClipEmbedder, fn_constructor_args=(str(model_dir),),
                          fn_constructor_kwargs={"threads": 1, "caption_column": "txt"},
                          batch_format="numpy", batch_size=5, num_cpus=1,
                          compute=ray.data.ActorPoolStrategy(size=1)).take_all()
    rows.sort(key=lambda r: r["__key__"])
    assert [r["__key__"] for r in rows] == [s["key"] for s in samples]
    ref = clip_rs.CLIPModel(model_dir, threads=1)
    good = [i for i in range(12) if i != 5]
    got = np.stack([r["img_emb"] for r in rows])
    assert np.array_equal(got[good], ref.embed_images([samples[i]["image"] for i in good]))
    assert [r["status"] for r in rows] == ["error" if i == 5 else "ok" for i in range(12)]
    assert "JPEG" in rows[5]["error"] and not got[5].any()
    cap = [i for i, s in enumerate(samples) if s["caption"] is not None]
    txt = np.stack([r["text_emb"] for r in rows])
    assert np.array_equal(txt[cap], ref.embed_texts([samples[i]["caption"] for i in cap],
                                                    truncate=True))

    # The same samples as img2dataset's parquet (image bytes in `jpg`) through read_parquet.
    import pyarrow as pa

    pq.write_table(pa.table({"key": [x["key"] for x in samples],
                             "jpg": [x["image"] for x in samples],
                             "caption": [x["caption"] for x in samples]}),
                   tmp_path / "part.parquet")
    ds = ray.data.read_parquet(str(tmp_path / "part.parquet"))
    prow = ds.map_batches(ray_data.ClipEmbedder, fn_constructor_args=(str(model_dir),),
                          fn_constructor_kwargs={"threads": 1, "image_columns": ["jpg"],
                                                 "caption_column": "caption"},
                          batch_format="numpy", batch_size=4, num_cpus=1,
                          compute=ray.data.ActorPoolStrategy(size=1)).take_all()
    prow.sort(key=lambda r: r["key"])
    assert np.array_equal(np.stack([r["img_emb"] for r in prow]), got)
    assert np.array_equal(np.stack([r["text_emb"] for r in prow]), txt)
    assert [r["status"] for r in prow] == [r["status"] for r in rows]


def test_broken_shard_fails_alone(cluster, tmp_path):
    model_dir = tiny_text_model(FIXTURES / "clip-tiny", tmp_path / "model")
    good = make_shards(tmp_path / "shards", shards=2, per_shard=8)
    cut = tmp_path / "cut.tar"
    data = open(good[1], "rb").read()
    cut.write_bytes(data[: len(data) // 2 + 100])
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"\x5a" * 3000)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError) as e:
        ray_data.embed_shards([str(garbage), good[0], str(cut), good[1]], str(out),
                              model=str(model_dir), concurrency=2, threads=1)
    msg = str(e.value)
    assert msg.startswith("2 shard(s) not done") and "garbage.tar (error: ReadError" in msg, msg
    assert "cut.tar (error:" in msg, msg
    assert sorted(p.name for p in (out / "metadata").iterdir()) == [
        "metadata_00000.parquet", "metadata_00001.parquet"]
    assert not [p for p in out.rglob("*") if "garbage" in p.name and p.parent.name != ".locks"]


def test_killed_actor_leaves_every_key_exactly_once(cluster, tmp_path):
    shards = make_shards(tmp_path / "shards", per_shard=64, size=96)
    out = tmp_path / "out"
    killed = []

    def killer():
        # The shard lock holds its worker's pid: kill the first actor found mid-shard.
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            locks = out / ".locks"
            for lock in sorted(locks.glob("*")) if locks.exists() else []:
                sid = lock.name
                txt = lock.read_text().strip()
                if not txt or (out / "metadata" / f"metadata_{sid}.parquet").exists():
                    continue
                pid = int(txt)
                if pid != os.getpid():
                    time.sleep(0.3)  # well into the shard
                    if not (out / "metadata" / f"metadata_{sid}.parquet").exists():
                        os.kill(pid, signal.SIGKILL)
                        killed.append((sid, pid))
                        return
            time.sleep(0.02)

    t = threading.Thread(target=killer)
    t.start()
    ray_data.embed_shards(shards, str(out), model="random:ViT-B/32", concurrency=2, threads=1,
                          batch_size=8)
    t.join()
    assert killed, "no worker was killed mid-shard; the test proved nothing"
    keys = []
    for sid in ("00000", "00001", "00002", "00003"):
        meta = pq.read_table(out / "metadata" / f"metadata_{sid}.parquet").to_pylist()
        keys += [m["key"] for m in meta]
        assert np.load(out / "img_emb" / f"img_emb_{sid}.npy").shape == (len(meta), 512)
    want = [s["key"] for p in shards for s in members(p)]
    assert sorted(keys) == sorted(want) and len(set(keys)) == len(keys) == 256
    assert not [p for p in out.rglob("*") if ".tmp" in p.name], "temporary files left"
    # The redone shard is the same as a clean single-process embedding of its images.
    sid = killed[0][0]
    ref = clip_rs.CLIPModel.random("ViT-B/32", threads=2)
    imgs = [s["image"] for s in members(str(tmp_path / "shards" / f"{sid}.tar"))]
    assert np.array_equal(np.load(out / "img_emb" / f"img_emb_{sid}.npy"), ref.embed_images(imgs))
