"""Threads: every Rust call releases the GIL (a pure-Python thread keeps running meanwhile),
one model shared by a ThreadPoolExecutor of 4 threads gives bitwise the results of one
thread, and calls on the shared model overlap in time.

Not here: thread-count independence inside one call (the Rust tests, tests/determinism.rs)."""

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

import clip_rs
from conftest import sample_photo


@pytest.fixture(scope="module")
def b32():
    """Full-size random ViT-B/32 (no files needed): calls long enough to time."""
    return clip_rs.CLIPModel.random("ViT-B/32", threads=2, batch_size=4)


@pytest.fixture(scope="module")
def jpegs():
    out = []
    for i in range(8):
        buf = io.BytesIO()
        Image.fromarray(sample_photo(800 + 16 * i, 600, seed=i)).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def python_progress_during(call) -> tuple:
    """Iterations a pure-Python counting thread makes while `call` runs, and in the same time
    with the main thread asleep (GIL free)."""
    count = [0]
    stop = threading.Event()

    def counter():
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=counter)
    t.start()
    time.sleep(0.05)
    c0, t0 = count[0], time.perf_counter()
    call()
    c1, t1 = count[0], time.perf_counter()
    time.sleep(t1 - t0)
    c2 = count[0]
    stop.set()
    t.join()
    return c1 - c0, c2 - c1, t1 - t0


@pytest.mark.parametrize("what", ["embed_images", "embed_texts", "preprocess", "tokenize", "load"])
def test_gil_is_released_during_rust_work(what, jpegs):
    one = clip_rs.CLIPModel.random("ViT-B/32", threads=1)
    texts = [f"a photo of a {i} cat" * 4 for i in range(400)]
    calls = {
        "embed_images": lambda: one.embed_images(jpegs[:4]),
        "embed_texts": lambda: one.embed_texts(texts[:24]),
        "preprocess": lambda: [one.preprocess(jpegs) for _ in range(3)],
        "tokenize": lambda: [clip_rs.tokenize(texts, truncate=True) for _ in range(20)],
        "load": lambda: clip_rs.CLIPModel.random("ViT-B/32", threads=1),
    }
    during, asleep, secs = python_progress_during(calls[what])
    print(f"{what}: {secs:.2f} s, Python thread counted {during} (asleep: {asleep})")
    assert secs > 0.05, "the call is too short to tell"
    # With the GIL held the counter would stand still but for one switch interval (5 ms).
    assert during > 0.2 * asleep, (during, asleep)


def test_four_threads_sharing_one_model_give_one_threads_results(b32, jpegs):
    texts = [f"a photo of thing number {i}" for i in range(24)]
    want_img = b32.embed_images(jpegs)
    want_txt = b32.embed_texts(texts)
    jobs = [(k, i) for i in range(len(jpegs)) for k in ("img", "txt")] * 2

    def run(job):
        kind, i = job
        if kind == "img":
            return b32.embed_images([jpegs[i]])[0]
        return b32.embed_texts(texts[3 * i:3 * i + 3])

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(run, jobs))
    for (kind, i), got in zip(jobs, results):
        want = want_img[i] if kind == "img" else want_txt[3 * i:3 * i + 3]
        assert np.array_equal(got, want), (kind, i)


def test_calls_from_threads_overlap_in_time(b32, jpegs):
    """4 threads on one shared model: their calls run at the same time. Concurrency = the
    sum of the calls' wall times over the wall time they span together: 1.0 if the calls ran
    one after the other (as they would with the GIL held), up to 4 if fully overlapped. A
    ratio of wall times would say the same only on an idle machine; this holds under load."""
    barrier = threading.Barrier(4)

    def call(i):
        barrier.wait()
        t0 = time.perf_counter()
        b32.embed_images(jpegs[2 * i:2 * i + 2])
        return t0, time.perf_counter()

    with ThreadPoolExecutor(4) as ex:
        spans = list(ex.map(call, range(4)))
    total = sum(t1 - t0 for t0, t1 in spans)
    wall = max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans)
    t = time.perf_counter()
    for i in range(4):
        b32.embed_images(jpegs[2 * i:2 * i + 2])
    serial = time.perf_counter() - t
    print(f"concurrency {total / wall:.2f}; 4 threads {wall:.3f} s, one after the other "
          f"{serial:.3f} s")
    assert total / wall > 1.8, spans
