"""Threads: every Rust call releases the GIL (a pure-Python thread keeps running meanwhile),
one model shared by a ThreadPoolExecutor of 4 threads gives bitwise the results of one
thread, and calls on the shared model run while another call on it is in progress.

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
    distinct = [f"{i * 7919 % 100003} tok{i} x{i:x} y{i * 31 % 997}" for i in range(60000)]
    calls = {
        "embed_images": lambda: one.embed_images(jpegs[:4]),
        "embed_texts": lambda: one.embed_texts(texts[:24]),
        "preprocess": lambda: [one.preprocess(jpegs) for _ in range(3)],
        "tokenize": lambda: clip_rs.tokenize(distinct),
        "load": lambda: clip_rs.CLIPModel.random("ViT-B/32", threads=1),
    }
    during, asleep, secs = python_progress_during(calls[what])
    print(f"{what}: {secs:.2f} s, Python thread counted {during} (asleep: {asleep})")
    assert secs > 0.05, "the call is too short to tell"
    # With the GIL held the counter would stand still but for one switch interval (5 ms).
    assert during > 0.1 * asleep, (during, asleep)


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


def test_calls_on_a_shared_model_run_while_another_is_in_progress(b32, jpegs):
    """While one thread is inside a long call (16 images), 3 threads make short calls (one
    text each) on the same model; many complete before the long call ends. With the GIL held
    the short calls could only slip in at the long call's edges (a few in all): counted, not
    timed, so a loaded machine does not change the verdict."""
    want_long = b32.embed_images(jpegs * 2)
    want_short = b32.embed_texts(["a photo of a cat"])
    done = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def short_calls():
        ok = True
        while not stop.is_set():
            ok &= np.array_equal(b32.embed_texts(["a photo of a cat"]), want_short)
            with lock:
                done[0] += 1
        return ok

    with ThreadPoolExecutor(3) as ex:
        futs = [ex.submit(short_calls) for _ in range(3)]
        while done[0] < 3:
            time.sleep(0.01)
        before, t = done[0], time.perf_counter()
        got = b32.embed_images(jpegs * 2)
        during, secs = done[0] - before, time.perf_counter() - t
        stop.set()
        assert all(f.result() for f in futs), "a short call's result changed under sharing"
    assert np.array_equal(got, want_long), "the long call's result changed under sharing"
    print(f"{during} short calls completed during a {secs:.2f} s call on the same model")
    assert during >= 10, during
