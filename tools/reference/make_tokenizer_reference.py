#!/usr/bin/env python3
"""Build the tokenizer reference corpus and OpenAI's ids for it.

Writes crates/tokenizer/tests/fixtures/tokenizer_reference.jsonl.gz, one JSON
object per line:

  t    the text
  ids  SimpleTokenizer().encode(t)
  ctx  the 77-long row of clip.tokenize([t], truncate=True)
  long true when clip.tokenize([t]) without truncate raises (too long)
  dec  SimpleTokenizer().decode(ids)
  and, for texts that are not plain ASCII or hold '&', the outputs of each
  cleaning step, for the unit tests:
  fx   ftfy.fix_text(t)
  un   html.unescape(t)
  lo   t.lower()
  pt   the pre-tokens: regex findall on whitespace_clean(basic_clean(t)).lower()

It also writes, for the other-vocabulary and decode tests:
  small_merges.txt.gz      header + the first 3,000 merges (OpenAI format)
  small_vocab/             the same vocabulary as Hugging Face vocab.json + merges.txt
  small_reference.jsonl.gz {t, ids} from SimpleTokenizer(bpe_path=small_merges.txt.gz)
  decode_reference.jsonl.gz {ids, dec}: random id sequences (invalid UTF-8
                           included) and SimpleTokenizer().decode on them
  utf8_reference.jsonl.gz  {hex, ids}: byte strings, mostly invalid UTF-8, and
                           encode(bytes.decode("utf-8", errors="replace"))

The text is real text that no one here wrote: stdlib docstrings, man pages
(many languages) under /usr/share/man, Debian changelogs and package METADATA
from site-packages; plus Unicode edge cases built from it (mojibake made by
mis-decoding real non-ASCII lines, odd whitespace, very long lines) and a short
list of edge-case inputs.

simple_tokenizer.py is loaded by file path, so torch is not needed.
Usage: pip install ftfy regex openai-clip; python3 tools/reference/make_tokenizer_reference.py
"""
import gzip
import html
import importlib.util
import json
import os
import random
import re
import sys
import sysconfig
import warnings

import ftfy
import regex

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "crates", "tokenizer", "tests", "fixtures", "tokenizer_reference.jsonl.gz")
MAX_LINES = 9000
rng = random.Random(1234)


def load_simple_tokenizer():
    spec = importlib.util.find_spec("clip")
    path = os.path.join(os.path.dirname(spec.origin), "simple_tokenizer.py")
    mod_spec = importlib.util.spec_from_file_location("simple_tokenizer", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


def clip_tokenize_row(tok, ids, context_length=77):
    """clip.tokenize's logic for one text, without torch."""
    sot, eot = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
    tokens = [sot] + ids + [eot]
    too_long = len(tokens) > context_length
    if too_long:
        tokens = tokens[:context_length]
        tokens[-1] = eot
    return tokens + [0] * (context_length - len(tokens)), too_long


def stdlib_docs():
    out = []
    skip = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "pydoc", "webbrowser"}
    warnings.simplefilter("ignore")
    for name in sorted(sys.stdlib_module_names):
        if name in skip or name.startswith("_"):
            continue
        try:
            mod = __import__(name)
        except Exception:
            continue
        docs = [getattr(mod, "__doc__", None)]
        for attr in sorted(dir(mod))[:60]:
            try:
                docs.append(getattr(getattr(mod, attr), "__doc__", None))
            except Exception:
                pass
        for d in docs:
            if isinstance(d, str):
                out.append(d)
    return out


def man_pages(limit):
    out = []
    root = "/usr/share/man"
    files = []
    for dirpath, _, names in os.walk(root):
        files += [os.path.join(dirpath, n) for n in names if n.endswith(".gz")]
    files.sort()
    rng.shuffle(files)
    for f in files[:limit]:
        try:
            out.append(gzip.open(f).read().decode("utf-8", errors="replace"))
        except Exception:
            pass
    return out


def package_texts():
    out = []
    site = sysconfig.get_paths()["purelib"]
    for name in sorted(os.listdir(site)):
        if name.endswith(".dist-info"):
            p = os.path.join(site, name, "METADATA")
            if os.path.exists(p):
                out.append(open(p, encoding="utf-8", errors="replace").read())
    for dirpath, _, names in sorted(os.walk("/usr/share/doc")):
        for n in sorted(names):
            if n.startswith("changelog") and n.endswith(".gz"):
                try:
                    out.append(gzip.open(os.path.join(dirpath, n)).read()[:20000].decode("utf-8", errors="replace"))
                except Exception:
                    pass
    return out


EDGE_CASES = [
    "", " ", "\t\n", "a", "A", "<|startoftext|>", "<|ENDOFTEXT|>", "x<|endoftext|>y", "!<|startoftext|>",
    "<|ſtartoftext|>", "it'S here", "we'RE", "I'ſ", "ΟΔΟΣ ΣΟΦΟΣ Σ", "ΑΣ.", "İstanbul", "ǅungla", "\u0345x\u0345",
    "&amp;amp;", "&amp;lt;b&amp;gt;", "&lt;p&gt;", "&copy 2024 &notit; &notin; &#x1F600; &#128512; &#0; &#x110000; &#55296;",
    "AT&T &c &amp", "&ldquo;quoted&rdquo; &hellip;", "&Eacute;cole &EACUTE;", "5 &lt; 6 <b>bold</b> &amp; more",
    "café", "cafe\u0301", "naïve façade", "Ångström", "ﬁ ﬂ ﬀ ﬃ", "ＬＯＵＤ　ＮＯＩＳＥＳ", "“curly” ‘quotes’ ʼ",
    "日本語のテキスト", "中文文本，标点。", "한국어 텍스트", "مرحبا بالعالم", "नमस्ते दुनिया", "ไทย",
    "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️", "🙂" * 50, "a\u00a0b\u2003c\u3000d\u200be\u2028f\u2029g\u0085h",
    "line1\r\nline2\rline3", "\x1b[31mred\x1b[0m", "ctrl\x00\x01\x7fchars", "tab\there", "\ufeffbom",
    "âœ” No problems", "The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.", "Ã¡rbol", "Ã©tÃ© Ã  Paris", "ÐŸÑ€Ð¸Ð²ÐµÑ‚",
    "&macr;\\_(ã\x83\x84)_/&macr;", "\x80\x93 c1", "numbers 123 4.5 ¹²³ ½ Ⅻ ٣",
    "x" * 3000, "ab" * 2000, "word " * 400,
]


def mojibake_variants(texts):
    out = []
    nonascii = [t for t in texts if any(ord(c) > 127 for c in t) and len(t) < 300]
    rng.shuffle(nonascii)
    for t in nonascii[:400]:
        b = t.encode("utf-8")
        for enc in ("latin-1", "windows-1252", "cp437", "macroman", "windows-1251"):
            try:
                out.append(b.decode(enc))
            except UnicodeDecodeError:
                pass
    return out


def odd_whitespace(texts):
    out = []
    spaces = ["\u00a0", "\u2003", "\u3000", "\t", "\u200b", "\u2009", "\x0b", "\x1c", "\u180e", "\u205f"]
    for t in texts[:300]:
        out.append("".join(rng.choice(spaces) if c == " " else c for c in t))
    return out


FIXTURES = os.path.dirname(OUT)
SMALL_MERGES = 3000


def write_small_vocab(st, corpus):
    full = gzip.open(st.default_bpe()).read().decode("utf-8").split("\n")
    small_path = os.path.join(FIXTURES, "small_merges.txt.gz")
    with gzip.GzipFile(small_path, "wb", mtime=0) as f:
        f.write(("\n".join(full[: SMALL_MERGES + 1]) + "\n").encode("utf-8"))
    small = st.SimpleTokenizer(bpe_path=small_path)
    hf = os.path.join(FIXTURES, "small_vocab")
    os.makedirs(hf, exist_ok=True)
    with open(os.path.join(hf, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(small.encoder, f, ensure_ascii=False)
    merges = sorted(small.bpe_ranks.items(), key=lambda kv: kv[1])
    with open(os.path.join(hf, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(" ".join(m) + "\n" for m, _ in merges if len(m) == 2))
    with gzip.open(os.path.join(FIXTURES, "small_reference.jsonl.gz"), "wt", encoding="utf-8", compresslevel=9) as f:
        for t in corpus[:1500] + corpus[-len(EDGE_CASES):]:
            f.write(json.dumps({"t": t, "ids": small.encode(t)}, ensure_ascii=False) + "\n")


def write_decode_reference(tok):
    n = len(tok.decoder)
    with gzip.open(os.path.join(FIXTURES, "decode_reference.jsonl.gz"), "wt", encoding="utf-8", compresslevel=9) as f:
        for i in range(400):
            k = rng.randint(0, 12)
            ids = [rng.randrange(n) if i % 2 else rng.randrange(512) for _ in range(k)]
            f.write(json.dumps({"ids": ids, "dec": tok.decode(ids)}, ensure_ascii=False) + "\n")
    # Invalid UTF-8 input, decoded as errors="replace" before encoding.
    samples = [b"caf\xe9", b"\xff\xfe\x00a", b"ok \xe2\x82 half", b"\xed\xa0\x80 surrogate", b"\xc0\x80 java null",
               b"\xf0\x9f\x98 cut emoji", b"\x80\x81\x82", b"valid \xc3\xa9 text", b"\xf4\x90\x80\x80 too big"]
    for i in range(200):
        samples.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 24))))
    with gzip.open(os.path.join(FIXTURES, "utf8_reference.jsonl.gz"), "wt", encoding="utf-8", compresslevel=9) as f:
        for b in samples:
            f.write(json.dumps({"hex": b.hex(), "ids": tok.encode(b.decode("utf-8", errors="replace"))}) + "\n")


def main():
    st = load_simple_tokenizer()
    tok = st.SimpleTokenizer()
    lines = []
    for blob in stdlib_docs() + man_pages(600) + package_texts():
        for line in blob.split("\n"):
            line = line.strip("\n")
            if line.strip():
                lines.append(line)
    seen = set()
    uniq = []
    for line in lines:
        if line not in seen:
            seen.add(line)
            uniq.append(line)
    rng.shuffle(uniq)
    nonascii = [l for l in uniq if any(ord(c) > 127 for c in l)]
    ascii_lines = [l for l in uniq if l not in set(nonascii)]
    corpus = ascii_lines[:4000] + nonascii[:2500]
    paragraphs = ["\n".join(uniq[i:i + 5]) for i in range(0, 1000, 5)]
    long_lines = [" ".join(uniq[i:i + 60]) for i in range(0, 1200, 60)]
    corpus += paragraphs + long_lines + mojibake_variants(uniq) + odd_whitespace(rng.sample(uniq, 300))
    corpus += EDGE_CASES
    corpus = corpus[:MAX_LINES - len(EDGE_CASES)] + EDGE_CASES if len(corpus) > MAX_LINES else corpus
    pat = tok.pat
    n_detail = 0
    with gzip.open(OUT, "wt", encoding="utf-8", compresslevel=9) as f:
        for t in corpus:
            ids = tok.encode(t)
            row, too_long = clip_tokenize_row(tok, ids)
            rec = {"t": t, "ids": ids, "ctx": row, "long": too_long, "dec": tok.decode(ids)}
            if not t.isascii() or "&" in t or any(ord(c) < 32 and c not in "\t\n" for c in t):
                n_detail += 1
                rec["fx"] = ftfy.fix_text(t)
                rec["un"] = html.unescape(t)
                rec["lo"] = t.lower()
                cleaned = st.whitespace_clean(st.basic_clean(t)).lower()
                rec["pt"] = regex.findall(pat, cleaned)
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    write_small_vocab(st, corpus)
    write_decode_reference(tok)
    print("wrote", len(corpus), "lines,", n_detail, "with per-step outputs, to", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
