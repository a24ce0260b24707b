#!/usr/bin/env python3
"""End-to-end Python benchmark: the clip_rs package against transformers and open_clip, from
JPEG files to normalised embeddings, all with the same full-size random ViT-B/32 weights.

Contenders (each in a long-lived worker process of its own, loaded once)
  clip_rs       CLIPModel(folder, threads=T).embed_images(paths) / .embed_texts(prompts)
  transformers  CLIPProcessor + CLIPModel (fp32) from the same folder, torch.set_num_threads(T):
                PIL open, processor(images=...), get_image_features, normalise; texts with
                processor(text=..., padding=True)
  open_clip     create_model_and_transforms("ViT-B-32") (fp32, same weights loaded into it),
                its preprocess per image, torch.stack, encode_image, normalise; its tokenizer
                (pads to 77), encode_text

Images: N JPEGs (default 256) of photo sizes 640x480 .. 1600x1200 (gradients + noise, Pillow
quality 90), made once in --work. Texts: N short prompts ("a photo of a {thing}."). Batches of
32 for everyone. Rounds interleave the contenders (A B C A B C ...); figures are medians over
rounds, and the best round of each (on a loaded machine, the nearest to a quiet one's). Also measured: `import clip_rs` in a fresh interpreter (median of 9), and the installed
size of the package (the clip_rs folder and its dist-info in site-packages).

    python3 tools/bench_python.py --threads 2 --rounds 3 [--omp-passive]

Needs torch, transformers, pillow, and open_clip_torch for that contender (skipped, and said
so, when it does not import), and clip_rs installed (pip install ./python) in the same
interpreter.

Not here: per-tower latency against PyTorch and ONNX Runtime (tools/bench_vs_peers.py).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = 32
THINGS = ["cat", "dog", "car", "tree", "house", "boat", "bird", "horse", "chair", "lamp",
          "river", "mountain", "bicycle", "guitar", "clock", "flower"]


# ---------------------------------------------------------------- inputs and weights

def make_images(folder: Path, n: int) -> list:
    """n photo-like JPEGs (kept between runs)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    sizes = [(640, 480), (800, 600), (1024, 768), (1280, 960), (1600, 1200), (1200, 1600),
             (1280, 720), (960, 640)]
    paths = []
    rng = np.random.default_rng(0)
    for i in range(n):
        p = folder / f"photo_{i:04d}.jpg"
        paths.append(p)
        if p.exists():
            continue
        w, h = sizes[i % len(sizes)]
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        phase = rng.uniform(0, 6.28, 3)
        base = np.stack([127 + 100 * np.sin(x / (37 + i % 11) + phase[c]) *
                         np.cos(y / (53 + i % 7)) for c in range(3)], axis=-1)
        img = np.clip(base + rng.normal(0, 18, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(p, "JPEG", quality=90)
    return paths


def write_vocab(folder: Path) -> None:
    """vocab.json + merges.txt of OpenAI's BPE (the repository's copy of
    bpe_simple_vocab_16e6.txt.gz), as openai/clip-vit-base-patch32 has them."""
    import gzip

    raw = gzip.open(ROOT / "crates/tokenizer/data/bpe_simple_vocab_16e6.txt.gz").read()
    merges = [tuple(m.split()) for m in raw.decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]]
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(256 - len(printable))]
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges)
                                       + "\n")


def make_model(folder: Path) -> None:
    """A random-weight ViT-B/32 (transformers' default CLIPConfig), saved as HF files."""
    if (folder / "model.safetensors").exists():
        return
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    CLIPModel(CLIPConfig()).eval().save_pretrained(folder)
    CLIPImageProcessor().save_pretrained(folder)
    write_vocab(folder)


# ---------------------------------------------------------------- workers

def worker(kind: str, model_dir: str, threads: int) -> None:
    """Loads one contender, then answers JSON commands on stdin: {"op": "images"|"texts",
    "items": [...]} -> {"secs": .., "n": .., "head": first row}."""
    import numpy as np

    if kind == "clip_rs":
        import clip_rs

        m = clip_rs.CLIPModel(model_dir, threads=threads, batch_size=BATCH)

        def images(paths):
            return m.embed_images(paths)

        def texts(ts):
            return m.embed_texts(ts)
    else:
        import torch
        from PIL import Image

        torch.set_num_threads(threads)
        if kind == "transformers":
            from transformers import CLIPModel, CLIPProcessor

            model = CLIPModel.from_pretrained(model_dir).eval()
            proc = CLIPProcessor.from_pretrained(model_dir)
            sys.stderr.write(f"transformers image processor: {type(proc.image_processor).__name__}\n")

            def enc_img(batch):
                x = proc(images=[Image.open(p) for p in batch], return_tensors="pt")
                return features(model.get_image_features(pixel_values=x["pixel_values"]))

            def enc_txt(batch):
                t = proc(text=batch, padding=True, return_tensors="pt")
                return features(model.get_text_features(input_ids=t["input_ids"],
                                                        attention_mask=t["attention_mask"]))
        else:
            import open_clip

            model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32")
            load_hf_into_open_clip(model, model_dir)
            model.eval()
            tok = open_clip.get_tokenizer("ViT-B-32")

            def enc_img(batch):
                return model.encode_image(torch.stack([preprocess(Image.open(p)) for p in batch]))

            def enc_txt(batch):
                return model.encode_text(tok(batch))

        def run(enc, items):
            out = []
            with torch.inference_mode():
                for i in range(0, len(items), BATCH):
                    f = enc(items[i:i + BATCH])
                    out.append((f / f.norm(dim=-1, keepdim=True)).numpy())
            return np.concatenate(out)

        def images(paths):
            return run(enc_img, paths)

        def texts(ts):
            return run(enc_txt, ts)

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        f = images if cmd["op"] == "images" else texts
        t = time.perf_counter()
        out = f(cmd["items"])
        secs = time.perf_counter() - t
        print(json.dumps({"secs": secs, "n": len(out), "head": out[:4].tolist()}), flush=True)


def features(out):
    """transformers 5 may return a model output where 4 returned the tensor."""
    return out if hasattr(out, "norm") else out.pooler_output


def load_hf_into_open_clip(model, model_dir: str) -> None:
    """The HF weights into open_clip's ViT-B-32 (OpenAI key names), so that all contenders
    compute the same function."""
    import torch
    from safetensors.torch import load_file

    hf = load_file(os.path.join(model_dir, "model.safetensors"))
    sd = {}
    for tower, pre, n in (("vision_model", "visual.transformer.resblocks", 12),
                          ("text_model", "transformer.resblocks", 12)):
        for i in range(n):
            h, o = f"{tower}.encoder.layers.{i}", f"{pre}.{i}"
            q, k, v = (hf[f"{h}.self_attn.{x}_proj.weight"] for x in "qkv")
            sd[f"{o}.attn.in_proj_weight"] = torch.cat([q, k, v])
            sd[f"{o}.attn.in_proj_bias"] = torch.cat(
                [hf[f"{h}.self_attn.{x}_proj.bias"] for x in "qkv"])
            for a, b in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                         ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
                         ("mlp.fc2", "mlp.c_proj")):
                for p in ("weight", "bias"):
                    sd[f"{o}.{b}.{p}"] = hf[f"{h}.{a}.{p}"]
    v = "vision_model"
    sd["visual.conv1.weight"] = hf[f"{v}.embeddings.patch_embedding.weight"]
    sd["visual.class_embedding"] = hf[f"{v}.embeddings.class_embedding"]
    sd["visual.positional_embedding"] = hf[f"{v}.embeddings.position_embedding.weight"]
    for a, b in (("pre_layrnorm", "ln_pre"), ("post_layernorm", "ln_post")):
        for p in ("weight", "bias"):
            sd[f"visual.{b}.{p}"] = hf[f"{v}.{a}.{p}"]
    sd["visual.proj"] = hf["visual_projection.weight"].T.contiguous()
    sd["token_embedding.weight"] = hf["text_model.embeddings.token_embedding.weight"]
    sd["positional_embedding"] = hf["text_model.embeddings.position_embedding.weight"]
    for p in ("weight", "bias"):
        sd[f"ln_final.{p}"] = hf[f"text_model.final_layer_norm.{p}"]
    sd["text_projection"] = hf["text_projection.weight"].T.contiguous()
    sd["logit_scale"] = hf["logit_scale"]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if k != "attn_mask"]
    assert not missing and not unexpected, (missing, unexpected)


# ---------------------------------------------------------------- driver

class Worker:
    def __init__(self, kind: str, model_dir: Path, threads: int, omp_passive: bool = False):
        self.kind = kind
        env = dict(os.environ)
        if omp_passive and kind != "clip_rs":
            # PyTorch's OpenMP threads spin while waiting; on a loaded machine a spinning
            # thread steals the core its partner needs, and 2 threads run slower than 1.
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        self.p = subprocess.Popen([sys.executable, __file__, "--worker", kind, "--model",
                                   str(model_dir), "--threads", str(threads)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=env)
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"{kind} worker did not start")

    def call(self, op: str, items: list) -> dict:
        self.p.stdin.write(json.dumps({"op": op, "items": items}) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait()


def import_time(runs: int = 9) -> float:
    code = "import time; t = time.perf_counter(); import clip_rs; print(time.perf_counter() - t)"
    out = [float(subprocess.check_output([sys.executable, "-c", code], text=True))
           for _ in range(runs)]
    return statistics.median(out)


def installed_size() -> int:
    import clip_rs

    pkg = Path(clip_rs.__file__).parent
    dist = list(pkg.parent.glob("clip_rs-*.dist-info"))
    files = [f for d in [pkg, *dist] for f in d.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files)


def min_cosine(a: list, b: list) -> float:
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker")
    ap.add_argument("--model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--work", default="/tmp/clip-bench-python")
    ap.add_argument("--contenders", default="clip_rs,transformers,open_clip")
    ap.add_argument("--omp-passive", action="store_true",
                    help="OMP_WAIT_POLICY=PASSIVE for the PyTorch contenders (fairer to them on "
                         "a loaded machine)")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.model, args.threads)
        return 0
    work = Path(args.work)
    paths = [str(p) for p in make_images(work / "images", args.images)]
    model_dir = work / "clip-vit-b32-random-hf"
    make_model(model_dir)
    prompts = [f"a photo of a {THINGS[i % len(THINGS)]} number {i}." for i in range(args.images)]
    for p in paths:  # warm the page cache for everyone
        Path(p).read_bytes()
    workers = []
    for kind in args.contenders.split(","):
        try:
            workers.append(Worker(kind, model_dir, args.threads, args.omp_passive))
        except Exception as e:  # noqa: BLE001 - a contender that does not import is reported
            print(f"{kind}: skipped ({e})")
    for w in workers:  # warm-up: first-call costs out of the timings
        w.call("images", paths[:4]), w.call("texts", prompts[:4])
    secs = {(w.kind, op): [] for w in workers for op in ("images", "texts")}
    heads = {}
    for r in range(args.rounds):
        for w in workers:
            for op, items in (("images", paths), ("texts", prompts)):
                res = w.call(op, items)
                secs[(w.kind, op)].append(res["secs"])
                heads[(w.kind, op)] = res["head"]
                print(f"round {r + 1} {w.kind:<13} {op:<7} {len(items) / res['secs']:8.1f} /s",
                      flush=True)
    for w in workers:
        w.close()
    print(f"\n{args.images} images (JPEG, 640x480..1600x1200) and {args.images} prompts, "
          f"{args.threads} threads, batch {BATCH}, median of {args.rounds} interleaved rounds"
          f"{', PyTorch with OMP_WAIT_POLICY=PASSIVE' if args.omp_passive else ''}:")
    rate = {k: len(paths) / statistics.median(v) for k, v in secs.items()}
    best = {k: len(paths) / min(v) for k, v in secs.items()}
    for w in workers:
        print(f"  {w.kind:<13} images {rate[(w.kind, 'images')]:7.1f} /s   "
              f"texts {rate[(w.kind, 'texts')]:8.1f} /s   (best round: images "
              f"{best[(w.kind, 'images')]:.1f} /s, texts {best[(w.kind, 'texts')]:.1f} /s)")
    peers = [w.kind for w in workers if w.kind != "clip_rs"]
    if "clip_rs" in [w.kind for w in workers] and peers:
        for op in ("images", "texts"):
            top = max(peers, key=lambda k: rate[(k, op)])
            top_best = max(peers, key=lambda k: best[(k, op)])
            print(f"  clip_rs / fastest peer ({top}), {op}: "
                  f"{rate[('clip_rs', op)] / rate[(top, op)]:.2f}x (medians); best rounds: "
                  f"{best[('clip_rs', op)] / best[(top_best, op)]:.2f}x ({top_best})")
            for k in peers:
                print(f"  same weights: min cosine clip_rs vs {k} ({op}, first 4): "
                      f"{min_cosine(heads[('clip_rs', op)], heads[(k, op)]):.6f}")
    print(f"  import clip_rs: {import_time() * 1000:.0f} ms (median of 9 fresh interpreters)")
    print(f"  installed size: {installed_size() / 1e6:.1f} MB (clip_rs/ + dist-info)")
    print(f"  load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
