#!/usr/bin/env python3
"""Interleaved `clip bench` of the engine's precisions on one model: f32, bf16 with the dot
and the conversion kernel (CLIP_BF16=dot|convert), int8 quantised at load, and int8 from a
folder written by `clip quantize`. Each round runs every case on every contender once, the
contenders' order reversed every other round (A B C, C B A, ...); prints each sample and
then the medians and the median of the per-round ratios to f32. For a shared, noisy machine:
quote the medians, never one run.

    python3 tools/bench_precisions.py --rounds 5 \\
        --contenders f32,bf16-dot,bf16-convert,int8,int8-file

Not here: the peers (tools/bench_vs_peers.py), accuracy (tests/tests/precision_tables.rs).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {"image_b1": ["--tower", "image", "--batch", "1"],
         "image_b8": ["--tower", "image", "--batch", "8"],
         "text_77": ["--tower", "text", "--tokens", "77"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=str(ROOT / "target" / "release" / "clip"))
    ap.add_argument("--model", default=str(ROOT / "models" / "clip-vit-b32-random"))
    ap.add_argument("--int8-model", default=str(ROOT / "models" / "clip-vit-b32-random-int8"),
                    help="a folder written by `clip quantize --model MODEL`")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--contenders", default="f32,bf16-dot,bf16-convert,int8,int8-file")
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    contenders = {
        "f32": (args.model, ["--precision", "f32"], {}),
        "bf16-dot": (args.model, ["--precision", "bf16"], {"CLIP_BF16": "dot"}),
        "bf16-convert": (args.model, ["--precision", "bf16"], {"CLIP_BF16": "convert"}),
        "bf16": (args.model, ["--precision", "bf16"], {}),
        "int8": (args.model, ["--precision", "int8"], {}),
        "int8-file": (args.int8_model, [], {}),
    }
    conts = args.contenders.split(",")
    cases = args.cases.split(",")
    samples: dict = {}
    for r in range(args.rounds):
        for case in cases:
            for c in (conts if r % 2 == 0 else conts[::-1]):
                model, extra, env = contenders[c]
                e = {k: v for k, v in os.environ.items() if k != "CLIP_BF16"} | env
                cmd = [args.clip, "bench", "--model", model, "--threads", str(args.threads),
                       "--json"] + CASES[case] + extra
                out = subprocess.run(cmd, capture_output=True, text=True, env=e, check=True)
                rec = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])
                samples.setdefault(case, {}).setdefault(c, []).append(rec["ms_per_item"])
                print(r, case, c, rec["ms_per_item"], rec.get("bf16_kernel", ""), flush=True)
    print(f"\nmedian ms per item over {args.rounds} rounds (min..max); "
          "median of per-round ratios to f32")
    for case in cases:
        s = samples[case]
        for c in conts:
            v = s[c]
            line = f"{case:9s} {c:13s} {statistics.median(v):8.2f}  ({min(v):.2f}..{max(v):.2f})"
            if "f32" in s and c != "f32":
                ratios = [f / x for f, x in zip(s["f32"], v)]
                line += f"  {statistics.median(ratios):.2f}x f32"
            print(line)


if __name__ == "__main__":
    main()
