#!/usr/bin/env python3
"""Side-by-side CPU benchmark of clip-rs against PyTorch and ONNX Runtime.

All contenders use the same full-size ViT-B/32 weights (an HF-layout folder) and the
same input shapes; PyTorch and ONNX Runtime also get the very same input values.

Contenders
  ours        `clip bench --model DIR --tower .. --json`, one subprocess per case
  ours-bf16   the same with `--precision bf16` (weights rounded to bf16 at load;
              the bf16 kernel this CPU's calibration picks, named in the JSON)
  ours-int8   the same with `--precision int8` (weights per output channel,
              activations per row, i32 accumulation)
  torch-fp32  transformers.CLIPModel, fp32, torch.set_num_threads(T), inference_mode
  torch-bf16  the same model after .to(torch.bfloat16)
  ort         both towers (with projection) exported to ONNX opset 17, run by
              onnxruntime's CPU provider with intra_op_num_threads=T
  ort-int8    the same ONNX towers after onnxruntime.quantization.quantize_dynamic
              (per-channel s8 weights, u8 activations quantised per tensor at run
              time), same provider and threads

Each peer runs in its own long-lived worker process (so its peak RSS can be read and
its threads do not compete with the others'); the engine is one subprocess per case.
Every round runs every (case, contender) pair once, contenders interleaved
(A B C D A B C D ...); the reported figure is the median over rounds of each call's
median ms per item.

    python3 tools/bench_vs_peers.py --rounds 5 --threads 2 \
        --write-doc docs/performance.md
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOT, EOT, CONTEXT = 49406, 49407, 77
PROMPT = "a photo of a cat."
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"

# (case id, tower, batch, number of real ids or None, padded to 77 for the peers)
CASES = [
    ("image_b1", "image", 1, None, False),
    ("image_b8", "image", 8, None, False),
    ("text_short", "text", 1, "short", False),
    ("text_short_pad77", "text", 1, "short", True),
    ("text_77", "text", 1, 77, False),
    ("text_short_b8", "text", 8, "short", False),
    ("text_short_b8_pad77", "text", 8, "short", True),
]
OURS = ["ours", "ours-bf16", "ours-int8"]
PEERS = ["torch-fp32", "torch-bf16", "ort", "ort-int8"]
PRECISION = {"ours": "f32", "ours-bf16": "bf16", "ours-int8": "int8"}
LABELS = {
    "ours": "clip-rs f32",
    "ours-bf16": "clip-rs bf16",
    "ours-int8": "clip-rs int8",
    "torch-fp32": "PyTorch fp32",
    "torch-bf16": "PyTorch bf16",
    "ort": "ONNX Runtime fp32",
    "ort-int8": "ONNX Runtime int8",
}


# ----------------------------------------------------------------------------- inputs

def prompt_ids(clip: str, prompt: str) -> list[int]:
    """SOT + the engine tokenizer's ids for `prompt` + EOT (the same ids clip.tokenize gives)."""
    out = subprocess.run([clip, "tokenize", prompt], check=True, capture_output=True, text=True)
    return [SOT] + json.loads(out.stdout.strip().splitlines()[0]) + [EOT]


def text_ids(short: list[int], n, pad: bool) -> list[int]:
    """Ids for a text case: the prompt, or a prompt repeated to n ids; zero-padded to 77 if pad."""
    if n == "short":
        ids = list(short)
    else:
        body = short[1:-1]
        fill = (body * (n // max(len(body), 1) + 1))[: n - 2]
        ids = [SOT] + fill + [EOT]
    if pad:
        ids = ids + [0] * (CONTEXT - len(ids))
    return ids


# ----------------------------------------------------------------------------- workers

def export_onnx(model, onnx_dir: Path) -> None:
    """Export the vision and text towers (with projection) to ONNX opset 17, if missing."""
    import torch

    onnx_dir.mkdir(parents=True, exist_ok=True)
    vpath, tpath = onnx_dir / "vision.onnx", onnx_dir / "text.onnx"

    class Vision(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return self.m.get_image_features(pixel_values=pixel_values).pooler_output

    class Text(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids):
            return self.m.get_text_features(input_ids=input_ids).pooler_output

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not vpath.exists():
            torch.onnx.export(
                Vision(model), (torch.zeros(2, 3, 224, 224),), str(vpath), dynamo=False,
                opset_version=17, input_names=["pixel_values"], output_names=["image_embeds"],
                dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}})
        if not tpath.exists():
            ids = torch.tensor([[SOT, 320, 1125, 539, 320, 2368, 269, EOT]])
            torch.onnx.export(
                Text(model), (ids,), str(tpath), dynamo=False, opset_version=17,
                input_names=["input_ids"], output_names=["text_embeds"],
                dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                              "text_embeds": {0: "batch"}})


def quantize_onnx(onnx_dir: Path) -> None:
    """ONNX Runtime's dynamic int8 of both exported towers (per-channel s8 weights), if
    missing: `vision_int8.onnx`, `text_int8.onnx`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for tower in ("vision", "text"):
        dst = onnx_dir / f"{tower}_int8.onnx"
        if not dst.exists():
            quantize_dynamic(str(onnx_dir / f"{tower}.onnx"), str(dst), per_channel=True,
                             weight_type=QuantType.QInt8)


def worker(args) -> None:
    """A long-lived contender: reads one JSON request per stdin line, answers one JSON line."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import numpy as np
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    kind = args.worker
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((8, 3, 224, 224), dtype=np.float32)

    model = transformers.CLIPModel.from_pretrained(args.model).eval()
    if kind in ("ort", "ort-int8"):
        import onnxruntime as ort

        export_onnx(model, Path(args.onnx_dir))
        suffix = ""
        if kind == "ort-int8":
            quantize_onnx(Path(args.onnx_dir))
            suffix = "_int8"
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        prov = ["CPUExecutionProvider"]
        vis = ort.InferenceSession(str(Path(args.onnx_dir) / f"vision{suffix}.onnx"), so,
                                   providers=prov)
        txt = ort.InferenceSession(str(Path(args.onnx_dir) / f"text{suffix}.onnx"), so,
                                   providers=prov)

        # the exported towers must give PyTorch's embeddings (same weights, same inputs)
        check_ids = np.asarray([[SOT, 320, 1125, 539, 320, 2368, 269, EOT]], dtype=np.int64)
        with torch.inference_mode():
            ref_v = model.get_image_features(
                pixel_values=torch.from_numpy(pixels[:2].copy())).pooler_output.numpy()
            ref_t = model.get_text_features(
                input_ids=torch.from_numpy(check_ids)).pooler_output.numpy()
        got_v = vis.run(None, {"pixel_values": pixels[:2]})[0]
        got_t = txt.run(None, {"input_ids": check_ids})[0]

        def min_cos(a, b):
            a = a / np.linalg.norm(a, axis=-1, keepdims=True)
            b = b / np.linalg.norm(b, axis=-1, keepdims=True)
            return float((a * b).sum(-1).min())

        check = {
            "ort_vs_torch_max_abs_diff": float(max(np.abs(got_v - ref_v).max(),
                                                   np.abs(got_t - ref_t).max())),
            "ort_vs_torch_min_cosine": min(min_cos(got_v, ref_v), min_cos(got_t, ref_t))}
        del model

        def image(x):
            return vis.run(None, {"pixel_values": x})[0]

        def text(ids):
            return txt.run(None, {"input_ids": ids})[0]

        def prep_image(b):
            return np.ascontiguousarray(pixels[:b])

        def prep_text(ids, b):
            return np.asarray([ids] * b, dtype=np.int64)
    else:
        check = {}
        dtype = torch.bfloat16 if kind == "torch-bf16" else torch.float32
        model = model.to(dtype)

        def image(x):
            with torch.inference_mode():
                return model.get_image_features(pixel_values=x).pooler_output

        def text(ids):
            with torch.inference_mode():
                return model.get_text_features(input_ids=ids).pooler_output

        def prep_image(b):
            return torch.from_numpy(pixels[:b].copy()).to(dtype)

        def prep_text(ids, b):
            return torch.tensor([ids] * b, dtype=torch.int64)

    warmed = set()
    print(json.dumps({"ready": True, **check}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("quit"):
            break
        if req["tower"] == "image":
            fn, x, items = image, prep_image(req["batch"]), req["batch"]
        else:
            fn, x, items = text, prep_text(req["ids"], req["batch"]), req["batch"]
        key = (req["case"],)
        if key not in warmed:
            for _ in range(2):
                fn(x)
            warmed.add(key)
        times = []
        t_end = time.perf_counter() + req["min_time"]
        while len(times) < req["min_iters"] or time.perf_counter() < t_end:
            t0 = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t0)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        print(json.dumps({"ms_per_item": 1e3 * statistics.median(times) / items,
                          "iters": len(times), "maxrss_kb": rss}), flush=True)


class Peer:
    def __init__(self, kind: str, args):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind,
               "--model", args.model, "--onnx-dir", args.onnx_dir,
               "--threads", str(args.threads)]
        self.kind = kind
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        msg = self._read()
        assert msg.get("ready"), msg
        self.info = {k: v for k, v in msg.items() if k != "ready"}

    def _read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {self.kind} exited (code {self.proc.poll()})")
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)

    def run(self, req: dict) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=60)


def run_ours_rss(args, tower: str, batch: int, tokens, precision: str) -> tuple[dict, int]:
    """Run one engine case, returning its JSON line and the child's peak RSS in KiB."""
    cmd = [args.clip, "bench", "--model", args.model, "--tower", tower, "--threads",
           str(args.threads), "--precision", precision, "--json", "--batch", str(batch)]
    if tower == "text":
        cmd += ["--tokens", str(tokens)]
    r, w = os.pipe()
    pid = os.posix_spawn(cmd[0], cmd, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_CLOSE, r)])
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (status {status})")
    rec = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][0])
    return rec, usage.ru_maxrss


# ----------------------------------------------------------------------------- report

def versions() -> dict:
    import numpy
    import onnxruntime
    import torch
    import transformers

    cpu = ""
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "onnxruntime": onnxruntime.__version__,
            "numpy": numpy.__version__, "cpu": cpu, "cores": os.cpu_count()}


def fmt(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def markdown(res: dict) -> str:
    med = res["median_ms_per_item"]
    n_short = res["short_ids"]
    rows = [
        ("image, batch 1 (ms per image)", "image_b1", "image_b1"),
        ("image, batch 8 (ms per image)", "image_b8", "image_b8"),
        (f"text \"{PROMPT}\", {n_short} ids; peers padded to 77 (ms)", "text_short",
         "text_short_pad77"),
        (f"text \"{PROMPT}\", {n_short} ids; all at equal length (ms)", "text_short",
         "text_short"),
        ("text, 77 ids (ms)", "text_77", "text_77"),
        (f"text, batch 8 of {n_short} ids; peers padded to 77 (ms per text)", "text_short_b8",
         "text_short_b8_pad77"),
        (f"text, batch 8 of {n_short} ids; all at equal length (ms per text)", "text_short_b8",
         "text_short_b8"),
    ]
    head = ["case"] + [LABELS[c] for c in OURS + PEERS] + [
        "f32 vs faster fp32 peer", "bf16 vs PyTorch bf16", "bf16 vs f32", "int8 vs ORT int8",
        "int8 vs f32"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "-"

    for label, ours_case, peer_case in rows:
        ours = {o: med.get(ours_case, {}).get(o) for o in OURS}
        peers = {p: med.get(peer_case, {}).get(p) for p in PEERS}
        fp32 = [v for k, v in peers.items() if k in ("torch-fp32", "ort") and v is not None]
        best = min(fp32) if fp32 else None
        cells = [fmt(ours[o]) for o in OURS] + [fmt(peers[p]) for p in PEERS]
        cells += [ratio(best, ours["ours"]), ratio(peers["torch-bf16"], ours["ours-bf16"]),
                  ratio(ours["ours"], ours["ours-bf16"]),
                  ratio(peers["ort-int8"], ours["ours-int8"]),
                  ratio(ours["ours"], ours["ours-int8"])]
        lines.append("| " + " | ".join([label] + cells) + " |")
    rss = res.get("peak_rss_mb", {})
    if rss:
        lines.append("")
        lines.append("Peak RSS (MB): " + ", ".join(
            f"{LABELS[k]} {v:.0f}" for k, v in rss.items() if v))
    return "\n".join(lines)


def doc_section(res: dict) -> str:
    v = res["versions"]
    return "\n".join([
        BEGIN,
        "",
        f"`{res['command']}` ({res['date']}; {res['threads']} threads, {res['rounds']} "
        "rounds interleaved, medians of ms per item; "
        f"torch {v['torch']}, transformers {v['transformers']}, onnxruntime "
        f"{v['onnxruntime']}; {v['cpu']}):",
        "",
        markdown(res),
        *([""] + [f"{LABELS[k]}'s embeddings vs PyTorch fp32 on the same inputs: max abs "
                  f"difference {c['ort_vs_torch_max_abs_diff']:.1e}, smallest cosine "
                  f"{c['ort_vs_torch_min_cosine']:.6f}."
                  for k, c in res.get("checks", {}).items()]),
        *([""] + ["bf16 kernel of clip-rs bf16: " + res["bf16_kernel"] + "."]
          if res.get("bf16_kernel") else []),
        "",
        END,
    ])


def write_doc(path: Path, section: str) -> None:
    text = path.read_text()
    if BEGIN in text and END in text:
        a = text.index(BEGIN)
        b = text.index(END) + len(END)
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


# ----------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "clip-vit-b32-random"),
                    help="HF-layout model folder (config.json + model.safetensors)")
    ap.add_argument("--clip", default=str(ROOT / "target" / "release" / "clip"),
                    help="the engine's release binary")
    ap.add_argument("--onnx-dir", default=str(ROOT / "models" / "onnx"),
                    help="where the exported towers are written (git-ignored)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=1.0,
                    help="seconds of timed runs per peer call (at least --min-iters runs)")
    ap.add_argument("--min-iters", type=int, default=3)
    ap.add_argument("--contenders",
                    default="ours,ours-bf16,ours-int8,torch-fp32,torch-bf16,ort,ort-int8")
    ap.add_argument("--cases", help="comma-separated case ids (default: all)")
    ap.add_argument("--out", default=str(ROOT / "tools" / "out" / "bench_vs_peers.json"))
    ap.add_argument("--write-doc", help="rewrite the peers section of this Markdown file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.model = str(Path(args.model).resolve())
    args.onnx_dir = str(Path(args.onnx_dir).resolve())
    if args.worker:
        worker(args)
        return

    contenders = args.contenders.split(",")
    short = prompt_ids(args.clip, PROMPT)
    print(f"\"{PROMPT}\" -> {len(short)} ids {short}", file=sys.stderr)
    peers = {}
    for p in PEERS:
        if p in contenders:
            t0 = time.perf_counter()
            peers[p] = Peer(p, args)
            print(f"{p}: ready in {time.perf_counter() - t0:.1f} s {peers[p].info}",
                  file=sys.stderr)

    samples: dict = {c[0]: {} for c in CASES}
    rss_kb: dict = {}
    bf16_kernel = None
    cases = [c for c in CASES if not args.cases or c[0] in args.cases.split(",")]
    for rnd in range(args.rounds):
        for case, tower, batch, n, pad in cases:
            for who in contenders:
                if who in OURS:
                    if pad:
                        continue  # the engine never pads; its short case is text_short
                    tokens = len(short) if n == "short" else n
                    rec, rss = run_ours_rss(args, tower, batch, tokens, PRECISION[who])
                    ms = rec["ms_per_item"]
                    rss_kb[who] = max(rss_kb.get(who, 0), rss)
                    if "bf16_kernel" in rec:
                        bf16_kernel = f"{rec['bf16_kernel']} ({rec.get('bf16_kernel_source')})"
                else:
                    req = {"case": case, "tower": tower, "batch": batch,
                           "min_time": args.min_time, "min_iters": args.min_iters}
                    if tower == "text":
                        req["ids"] = text_ids(short, n, pad)
                    rec = peers[who].run(req)
                    ms = rec["ms_per_item"]
                    rss_kb[who] = max(rss_kb.get(who, 0), rec["maxrss_kb"])
                samples[case].setdefault(who, []).append(ms)
                print(f"round {rnd + 1}/{args.rounds} {case:17s} {who:11s} {ms:8.2f} ms/item",
                      file=sys.stderr)
    for p in peers.values():
        p.close()

    res = {
        "command": "python3 tools/bench_vs_peers.py " + " ".join(
            a for a in sys.argv[1:]),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "threads": args.threads, "rounds": args.rounds, "model": args.model,
        "prompt": PROMPT, "short_ids": len(short), "versions": versions(),
        "samples_ms_per_item": samples,
        "median_ms_per_item": {c: {w: statistics.median(v) for w, v in d.items()}
                               for c, d in samples.items()},
        "peak_rss_mb": {k: v / 1024 for k, v in rss_kb.items()},
        "checks": {k: p.info for k, p in peers.items() if p.info},
        "bf16_kernel": bf16_kernel,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    table = markdown(res)
    print(table)
    (out.with_suffix(".md")).write_text(table + "\n")
    if args.write_doc:
        write_doc(Path(args.write_doc), doc_section(res))
        print(f"wrote the peers section of {args.write_doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
