#!/usr/bin/env python3
"""Outlier channels for a random CLIP: the accuracy test of low-precision paths.

Trained CLIP models carry a few channels of the residual stream 10-100x larger
than the rest, and they are what breaks naive int8 activation quantisation: a
row quantised with one scale spends its 256 levels on the outlier and leaves
the ordinary channels a few levels each. Random-weight models have none. This
script copies a Hugging Face model folder made by make_reference.py, makes a
few residual channels (the same ones in every layer) FACTOR times larger by
scaling everything that writes them, and dumps a new PyTorch f32 reference
(same inputs as the source's, same file format) so the Rust tests and the
numerics tables run on it unchanged:

    python tools/reference/inject_outliers.py --src models/clip-vit-b32-random \\
        --out models/clip-vit-b32-random-outliers

What writes channel c of the residual stream is scaled by its factor:
  vision: patch_embedding.weight[c], class_embedding[c], position_embedding[:, c],
          pre_layrnorm weight[c] and bias[c] (the stream starts after it);
  text:   token_embedding[:, c], position_embedding[:, c];
  both:   every layer's self_attn.out_proj and mlp.fc2 weight row c and bias c.
What reads it through a layer norm is scaled by the inverse (the input column
c of q_proj, k_proj, v_proj, fc1 and of the final projection), as training
makes a model insensitive to its outlier channels: without that the
attention logits grow with the outliers, attention turns into an argmax and
the model becomes chaotic (bf16 weights alone then move its text embeddings by
a cosine of 0.004, which says nothing about a quantiser). The layer norms are
left alone, so each layer's q/k/v and fc1 inputs (the layer norms' outputs)
carry the outliers, as in trained models.

Default: 4 channels per tower, with factors that make them 10-100x larger than
the mean channel at the middle layer (printed; also in OUT/outliers.json):
vision 3.5, 6, 9, 11 give 10-96x (its stream starts after a layer norm, so a
channel grows faster than its factor), text 18, 35, 65, 110 give 10-93x.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

from transformers import CLIPConfig, CLIPModel


def outlier_channels(width: int, n: int, seed: int) -> list[int]:
    """n distinct channels of a width, reproducibly."""
    gen = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(width, generator=gen)[:n].tolist())


def inject(sd: dict[str, torch.Tensor], tower: str, channels: list[int], factors: list[float],
           layers: int) -> None:
    """Scales, in place, what writes the given residual channels (by the factors) and what
    reads them after a layer norm (by their inverses)."""
    def scale_rows(key: str, dim: int = 0) -> None:
        t = sd[key]
        for c, f in zip(channels, factors):
            if dim == 0:
                t[c] *= f
            else:
                t[:, c] *= f

    emb = f"{tower}.embeddings"
    if tower == "vision_model":
        scale_rows(f"{emb}.patch_embedding.weight")
        scale_rows(f"{emb}.class_embedding")
        scale_rows(f"{emb}.position_embedding.weight", dim=1)
        scale_rows(f"{tower}.pre_layrnorm.weight")
        scale_rows(f"{tower}.pre_layrnorm.bias")
    else:
        scale_rows(f"{emb}.token_embedding.weight", dim=1)
        scale_rows(f"{emb}.position_embedding.weight", dim=1)
    def scale_inputs(key: str) -> None:
        t = sd[key]
        for c, f in zip(channels, factors):
            t[:, c] /= f

    for i in range(layers):
        base = f"{tower}.encoder.layers.{i}"
        for lin in ("self_attn.out_proj", "mlp.fc2"):
            scale_rows(f"{base}.{lin}.weight")
            scale_rows(f"{base}.{lin}.bias")
        for lin in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.fc1"):
            scale_inputs(f"{base}.{lin}.weight")
    scale_inputs("visual_projection.weight" if tower == "vision_model" else "text_projection.weight")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True, help="a model folder made by make_reference.py (f32)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--vision-factors", default="3.5,6,9,11",
                    help="one factor per vision outlier channel (comma-separated)")
    ap.add_argument("--text-factors", default="18,35,65,110",
                    help="one factor per text outlier channel (comma-separated)")
    ap.add_argument("--seed", type=int, default=1, help="picks the channels")
    args = ap.parse_args()
    factors = {
        "vision_model": [float(f) for f in args.vision_factors.split(",")],
        "text_model": [float(f) for f in args.text_factors.split(",")],
    }

    with open(os.path.join(args.src, "config.json")) as f:
        cfg = CLIPConfig.from_dict(json.load(f))
    cfg._attn_implementation = "eager"
    sd = load_file(os.path.join(args.src, "model.safetensors"))
    picked = {}
    for tower, tcfg in (("vision_model", cfg.vision_config), ("text_model", cfg.text_config)):
        ch = outlier_channels(tcfg.hidden_size, len(factors[tower]), args.seed)
        inject(sd, tower, ch, factors[tower], tcfg.num_hidden_layers)
        picked[tower] = dict(zip(ch, factors[tower]))

    model = CLIPModel(cfg).to(torch.float32)
    for m in (model, model.text_model, model.vision_model):
        m.config._attn_implementation = "eager"
    model.eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("position_ids") for k in missing), (missing, unexpected)

    os.makedirs(args.out, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(args.out, "model.safetensors"))
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(os.path.join(args.src, name), os.path.join(args.out, name))

    ref_in = load_file(os.path.join(args.src, "reference.safetensors"))
    pixel_values, input_ids = ref_in["pixel_values"], ref_in["input_ids"]
    with torch.inference_mode():
        vout = model.vision_model(pixel_values=pixel_values, output_hidden_states=True, return_dict=True)
        tout = model.text_model(input_ids=input_ids, output_hidden_states=True, return_dict=True)
        full = model(input_ids=input_ids, pixel_values=pixel_values, return_dict=True)
        ref = {"pixel_values": pixel_values, "input_ids": input_ids}
        for i, h in enumerate(vout.hidden_states):
            ref[f"vision.hidden_states.{i}"] = h
        ref["vision.pooled"] = vout.pooler_output
        ref["image_features"] = model.visual_projection(vout.pooler_output)
        ref["image_embeds"] = full.image_embeds
        for i, h in enumerate(tout.hidden_states):
            ref[f"text.hidden_states.{i}"] = h
        ref["text.last_hidden_state"] = tout.last_hidden_state
        ref["text.pooled"] = tout.pooler_output
        ref["text_features"] = model.text_projection(tout.pooler_output)
        ref["text_embeds"] = full.text_embeds
        ref["logits_per_image"] = full.logits_per_image
        ref["logits_per_text"] = full.logits_per_text
    ref = {k: v.detach().contiguous().clone() for k, v in ref.items()}
    for k, v in ref.items():
        assert v.dtype == (torch.int64 if k == "input_ids" else torch.float32), (k, v.dtype)
        assert torch.isfinite(v).all(), k
    save_file(ref, os.path.join(args.out, "reference.safetensors"))

    # What the outliers look like: each channel's typical magnitude against the rest's.
    magnitudes = {}
    for tower, hs in (("vision_model", vout.hidden_states), ("text_model", tout.hidden_states)):
        mid = hs[len(hs) // 2]
        mag = mid.abs().mean(dim=(0, 1))
        rest = torch.ones_like(mag, dtype=torch.bool)
        rest[list(picked[tower])] = False
        base = mag[rest].mean().item()
        ratios = {c: round(mag[c].item() / base, 1) for c in picked[tower]}
        magnitudes[tower] = {str(c): r for c, r in ratios.items()}
        print(f"{tower}: outlier channel / mean other channel, mean |x| at layer {len(hs) // 2}: {ratios}")
    with open(os.path.join(args.out, "outliers.json"), "w") as f:
        json.dump({"source": os.path.basename(os.path.normpath(args.src)), "seed": args.seed,
                   "factors": {t: {str(c): f for c, f in p.items()} for t, p in picked.items()},
                   "magnitude_ratio_mid_layer": magnitudes},
                  f, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
