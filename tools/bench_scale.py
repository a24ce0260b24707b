"""Images per second of the shard pipelines of docs/scale.md on the same shards: `clip
embed-shards`, clip_rs.ray_data with 1 and 2 actors (a local Ray of `--cpus` CPUs), and
clip-retrieval's `clip-retrieval inference` (torch, CPU) when it is installed and given an
OpenAI-format checkpoint (tools/make_openai_random_b32.py). Rounds are interleaved, each
into a fresh output folder; the rate is images embedded / wall time of the whole command
(model load and start-up included, as a user sees it) and, for clip-retrieval, also its own
inference_duration.

    python3 tools/make_shards.py /tmp/shu --uniform
    python3 tools/bench_scale.py /tmp/shu/*.tar --model models/clip-vit-b32-random \\
        --clip target/release/clip --openai-checkpoint /tmp/vit-b32-random.pt \\
        --clip-retrieval /tmp/crenv/bin/clip-retrieval --rounds 2

Not here: correctness (python/tests/test_ray_data.py, tools/clip-cli/tests/embed_shards.rs).
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

RAY_RUN = """
import sys, time, ray
from clip_rs.ray_data import embed_shards
ray.init(num_cpus={cpus}, include_dashboard=False, log_to_driver=False)
ray.data.DataContext.get_current().enable_progress_bars = False
t = time.perf_counter()
r = embed_shards({shards!r}, {out!r}, model={model!r}, concurrency={actors}, threads={threads},
                 batch_size={batch})
print(sum(x["images"] - x["failed"] for x in r), time.perf_counter() - t)
"""


def run_cli(a, shards, out):
    t = time.perf_counter()
    p = subprocess.run([a.clip, "embed-shards", *shards, "--out", out, "--model", a.model,
                        "--threads", str(a.cpus), "--batch", str(a.batch),
                        "--decode-threads", "1"], capture_output=True, text=True, check=True)
    dt = time.perf_counter() - t
    n = int(p.stdout.strip().splitlines()[-1].split(" images embedded")[0].split()[-1])
    return n, dt, None


def run_ray(a, shards, out, actors):
    code = RAY_RUN.format(cpus=a.cpus, shards=list(shards), out=out, model=a.model,
                          actors=actors, threads=a.cpus // actors, batch=a.batch)
    t = time.perf_counter()
    p = subprocess.run([a.python, "-c", code], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode:
        sys.exit(p.stderr[-3000:])
    n, inner = p.stdout.split()[-2:]
    return int(n), dt, float(inner)


def run_clip_retrieval(a, shards, out):
    spec = "{" + ",".join(os.path.basename(s)[:-4] for s in shards) + "}"
    src = os.path.join(os.path.dirname(shards[0]), spec + ".tar")
    t = time.perf_counter()
    subprocess.run([a.clip_retrieval, "inference", "--input_dataset", src,
                    "--input_format", "webdataset", "--output_folder", out,
                    "--clip_model", a.openai_checkpoint, "--use_jit", "False",
                    "--enable_wandb", "False", "--batch_size", str(a.batch),
                    "--num_prepro_workers", str(a.cpus)],
                   capture_output=True, text=True, check=True)
    dt = time.perf_counter() - t
    stats = [json.load(open(f)) for f in glob.glob(os.path.join(out, "stats", "*.json"))]
    n = sum(s["sample_count"] for s in stats)
    return n, dt, sum(s["inference_duration"] for s in stats)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shards", nargs="+")
    ap.add_argument("--model", required=True, help="model folder (our engine)")
    ap.add_argument("--clip", default="target/release/clip")
    ap.add_argument("--python", default=sys.executable, help="a Python with clip_rs and ray")
    ap.add_argument("--clip-retrieval", help="the clip-retrieval program")
    ap.add_argument("--openai-checkpoint", help="OpenAI-format ViT-B/32 for clip-retrieval")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", default="cli,ray1,ray2,clip-retrieval")
    a = ap.parse_args()
    shards = [os.path.abspath(s) for s in a.shards]
    runs = {"cli": lambda o: run_cli(a, shards, o),
            "ray1": lambda o: run_ray(a, shards, o, 1),
            "ray2": lambda o: run_ray(a, shards, o, 2),
            "clip-retrieval": lambda o: run_clip_retrieval(a, shards, o)}
    names = [n for n in a.only.split(",") if n != "clip-retrieval" or a.clip_retrieval]
    results = {n: [] for n in names}
    for r in range(a.rounds):
        for name in names:
            out = tempfile.mkdtemp(prefix=f"bench-scale-{name}-")
            try:
                n, dt, inner = runs[name](out)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            results[name].append((n, dt, inner))
            extra = f", {n / inner:.2f} img/s inside" if inner else ""
            print(f"round {r} {name:15s} {n} images in {dt:.1f} s: {n / dt:.2f} img/s{extra}",
                  flush=True)
    print("best rounds (images/s, whole command):")
    for name, rs in results.items():
        print(f"  {name:15s} {max(n / dt for n, dt, _ in rs):.2f}")


if __name__ == "__main__":
    main()
