#!/usr/bin/env python3
"""Compare `clip tokenize` with OpenAI's SimpleTokenizer on any text, line by line.

Usage:
  python3 tools/reference/compare_tokenizer.py [--clip target/release/clip] FILE...
  python3 tools/reference/compare_tokenizer.py --man 20000   # lines of man pages

Each non-empty line of each file (gzip read transparently, invalid UTF-8
replaced as errors="replace") is one text. Prints the match rate and the
first mismatches. Needs: pip install ftfy regex openai-clip (torch not needed).
"""
import argparse
import gzip
import importlib.util
import json
import os
import random
import subprocess
import sys
import sysconfig


def load_simple_tokenizer():
    path = os.path.join(sysconfig.get_paths()["purelib"], "clip", "simple_tokenizer.py")
    spec = importlib.util.spec_from_file_location("simple_tokenizer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SimpleTokenizer()


def read_lines(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    return [l for l in data.decode("utf-8", errors="replace").split("\n") if l.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--clip", default="target/release/clip")
    ap.add_argument("--man", type=int, default=0, help="sample this many lines from /usr/share/man")
    args = ap.parse_args()
    lines = []
    for f in args.files:
        lines += read_lines(f)
    if args.man:
        pages = sorted(os.path.join(d, n) for d, _, ns in os.walk("/usr/share/man") for n in ns if n.endswith(".gz"))
        random.Random(7).shuffle(pages)
        for p in pages:
            try:
                lines += read_lines(p)
            except OSError:
                continue
            if len(lines) >= args.man:
                break
        lines = lines[: args.man]
    tok = load_simple_tokenizer()
    want = [tok.encode(t) for t in lines]
    stdin = "".join(json.dumps(t) + "\n" for t in lines)
    out = subprocess.run([args.clip, "tokenize", "--jsonl"], input=stdin, capture_output=True, text=True, check=True)
    got = [json.loads(l) for l in out.stdout.splitlines()]
    bad = [i for i, (a, b) in enumerate(zip(want, got)) if a != b] + list(range(len(got), len(want)))
    for i in bad[:10]:
        print("MISMATCH", repr(lines[i][:150]), "\n  want", want[i][:30], "\n  got ", got[i][:30] if i < len(got) else None)
    print(f"{len(lines) - len(bad)}/{len(lines)} lines identical ({100 * (len(lines) - len(bad)) / max(1, len(lines)):.3f}%)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
