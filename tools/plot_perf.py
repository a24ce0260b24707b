#!/usr/bin/env python3
"""Plots for docs/performance.md.

(a) docs/gemm_throughput.png: GEMM GFLOP/s by shape, per ISA (with and without pre-packed
    weights) and for the Rust peers, parsed from the Markdown table under "## GEMM" in
    docs/performance.md (as `cargo bench -p clip-benches --bench gemm_vs_peers` prints it).
(b) docs/encoder_vs_peers.png: encoder throughput of clip-rs against PyTorch and ONNX
    Runtime, from the JSON that tools/bench_vs_peers.py writes.

    python3 tools/plot_perf.py [--doc docs/performance.md] \
        [--peers-json tools/out/bench_vs_peers.json]
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def parse_gemm_table(doc: str):
    """Return (columns, rows, peak) from the first table after the "## GEMM" heading."""
    sec = doc.split("## GEMM", 1)[1]
    sec = re.split(r"\n## ", sec, maxsplit=1)[0]
    lines = [ln.strip() for ln in sec.splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|") and "x K x" in ln)
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows.append((cells[0], [float(c) if c not in ("", "-") else None for c in cells[1:]]))
    m = re.search(r"FMA peak[^:]*:\s*([\d.]+)\s*GFLOP/s", sec)
    peak = float(m.group(1)) if m else None
    return header[1:], rows, peak


def plot_gemm(doc_path: Path, out: Path) -> None:
    cols, rows, peak = parse_gemm_table(doc_path.read_text())
    keep = [i for i, c in enumerate(cols) if "/" not in c]  # drop the ratio column
    cols = [cols[i] for i in keep]
    ours = [c for c in cols if c.startswith("ours")]
    colors = {}
    blues = plt.get_cmap("Blues")
    for j, c in enumerate(ours):
        colors[c] = blues(0.3 + 0.7 * j / max(len(ours) - 1, 1))
    for c, col in zip([c for c in cols if c not in ours], ["#e6550d", "#fdae6b", "#31a354"]):
        colors[c] = col
    n = len(cols)
    width = 0.85 / n
    fig, ax = plt.subplots(figsize=(11, 4.4), dpi=90)
    for j, c in enumerate(cols):
        xs = [i + (j - (n - 1) / 2) * width for i in range(len(rows))]
        ys = [r[1][keep[j]] or 0 for r in rows]
        ax.bar(xs, ys, width, label=c, color=colors[c],
               edgecolor="black" if c == "ours-avx512-prepacked" else "none", linewidth=0.6)
    if peak:
        ax.axhline(peak, color="grey", ls="--", lw=1)
        ax.text(len(rows) - 0.5, peak, f"FMA peak {peak:.0f}", ha="right", va="bottom",
                fontsize=8, color="grey")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r[0].replace(" x ", "x") for r in rows], fontsize=8)
    ax.set_xlabel("M x K x N  (C = A W^T, W an [N, K] weight)")
    ax.set_ylabel("GFLOP/s (2 threads, median)")
    ax.set_title("GEMM throughput by shape: clip-rs kernels per ISA vs faer, gemm, matrixmultiply")
    ax.legend(fontsize=7, ncol=5, loc="upper left")
    ax.set_ylim(0, (peak or max(v or 0 for r in rows for v in r[1])) * 1.25)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def plot_peers(json_path: Path, out: Path) -> None:
    res = json.loads(json_path.read_text())
    med = res["median_ms_per_item"]
    n = res.get("short_ids", "?")
    contenders = [("ours", "clip-rs f32", "#3182bd"), ("ours-bf16", "clip-rs bf16", "#9ecae1"),
                  ("torch-fp32", "PyTorch fp32", "#e6550d"),
                  ("torch-bf16", "PyTorch bf16", "#fdae6b"), ("ort", "ONNX Runtime fp32", "#31a354")]
    panels = [
        ("Image encoder (images/s)", [("batch 1", "image_b1", "image_b1"),
                                      ("batch 8", "image_b8", "image_b8")]),
        ("Text encoder (texts/s; batch 1 unless said)", [
            (f"\"a photo of a cat.\"\n{n} ids; peers padded to 77", "text_short",
             "text_short_pad77"),
            (f"\"a photo of a cat.\"\n{n} ids, equal length", "text_short", "text_short"),
            ("77 ids", "text_77", "text_77"),
            (f"batch 8 x {n} ids;\npeers padded to 77", "text_short_b8", "text_short_b8_pad77")]),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), dpi=90,
                             gridspec_kw={"width_ratios": [2, 4]})
    width = 0.8 / len(contenders)
    for ax, (title, groups) in zip(axes, panels):
        for j, (key, label, color) in enumerate(contenders):
            xs, ys = [], []
            for i, (_, ours_case, peer_case) in enumerate(groups):
                case = ours_case if key.startswith("ours") else peer_case
                ms = med.get(case, {}).get(key)
                if ms:
                    xs.append(i + (j - (len(contenders) - 1) / 2) * width)
                    ys.append(1000.0 / ms)
            bars = ax.bar(xs, ys, width, label=label, color=color)
            ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([g[0] for g in groups], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.12)
    axes[0].set_ylabel("items per second (higher is better)")
    axes[0].set_ylim(0, axes[0].get_ylim()[1] * 1.6)  # room for the legend above the bars
    axes[0].legend(fontsize=8, loc="upper left", ncol=2)
    fig.suptitle(f"ViT-B/32 encoders, {res['threads']} threads, medians of {res['rounds']} "
                 f"interleaved rounds ({res['date']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--doc", default=str(ROOT / "docs" / "performance.md"))
    ap.add_argument("--peers-json", default=str(ROOT / "tools" / "out" / "bench_vs_peers.json"))
    ap.add_argument("--gemm-out", default=str(ROOT / "docs" / "gemm_throughput.png"))
    ap.add_argument("--peers-out", default=str(ROOT / "docs" / "encoder_vs_peers.png"))
    args = ap.parse_args()
    plot_gemm(Path(args.doc), Path(args.gemm_out))
    print(f"wrote {args.gemm_out}")
    if Path(args.peers_json).exists():
        plot_peers(Path(args.peers_json), Path(args.peers_out))
        print(f"wrote {args.peers_out}")
    else:
        print(f"no {args.peers_json}; run tools/bench_vs_peers.py first (skipped "
              f"{args.peers_out})")


if __name__ == "__main__":
    main()
