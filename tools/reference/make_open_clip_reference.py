#!/usr/bin/env python3
"""Random-weight open_clip models in open_clip's hub format, with their outputs as references.

    python tools/reference/make_open_clip_reference.py --model ViT-H-14 --layers 1 \
        --out models/open_clip-vit-h-14-random
    python tools/reference/make_open_clip_reference.py --model tiny-ls --out tests/fixtures/open_clip-tiny-ls

`--model` is an open_clip config name (ViT-B-32-quickgelu, ViT-L-14, ViT-H-14, ViT-bigG-14, ...),
kept at its full widths, or one of the small test configs below (committed as fixtures).
`--layers N` keeps N layers per tower (full widths, so every shape and head width is the
real one). Weights: open_clip's own initialisation, then layer norms, layer scales and biases
perturbed and the residual branches scaled up, so that every parameter matters to the
outputs (a freshly initialised open_clip model has unit layer norms, zero biases and layer
scales of 1e-5).

The folder gets `open_clip_config.json` ({"model_cfg", "preprocess_cfg"}, as open_clip's
`push_to_hf_hub` writes it), `open_clip_model.safetensors`, a few images, and:
- `reference.safetensors`: the images as open_clip preprocesses them (`pixel_values`), the
  token ids (`input_ids`: open_clip's tokenizer on a few prompts for CLIP's vocabulary, fixed
  ids below the vocabulary otherwise), and open_clip's outputs: `image_features`,
  `text_features`, `image_embeds`, `text_embeds` (normalised), per-layer hidden states
  `vision.hidden_states.{i}` / `text.hidden_states.{i}` (0 = before the first layer), and the
  residual stream after each layer's attention, `vision.attention.{i}` / `text.attention.{i}`;
- `probe.npz`: the same per-layer outputs for `clip check`'s fixed probe input (see
  `probe_pixels` and `probe_ids`), for `clip check MODEL --reference probe.npz`.
"""

import argparse
import json
import os

import numpy as np
import torch
from PIL import Image
import open_clip
from open_clip.model import CLIP
from open_clip.transform import image_transform
from safetensors.torch import save_file

# Small configs for committed fixtures: every option published open_clip ViT CLIPs use.
TINY = {
    "tiny-quickgelu": {
        "embed_dim": 16, "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 48, "head_width": 16,
                       "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 512, "width": 32, "heads": 2,
                     "layers": 2},
    },
    "tiny-ls": {  # layer scale, exact GELU, an mlp_ratio like bigG's
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 40, "head_width": 20,
                       "patch_size": 8, "ls_init_value": 1e-5, "mlp_ratio": 4.9231},
        "text_cfg": {"context_length": 77, "vocab_size": 512, "width": 32, "heads": 2,
                     "layers": 2, "ls_init_value": 1e-5},
    },
    "tiny-pool": {  # non-default pooling: mean of patches with LN after, no ln_pre, eos text
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 48, "head_width": 24,
                       "patch_size": 8, "pool_type": "avg", "final_ln_after_pool": True,
                       "no_ln_pre": True},
        "text_cfg": {"context_length": 77, "vocab_size": 512, "width": 32, "heads": 2,
                     "layers": 2, "pool_type": "eos", "eos_id": 511},
        "preprocess_cfg": {"resize_mode": "longest", "interpolation": "bilinear",
                           "fill_color": 127, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    },
}

PROMPTS = ["a photo of a cat", "a diagram of a red car", "two dogs playing in the snow at night"]


def model_cfg(name, layers):
    if name in TINY:
        cfg = json.loads(json.dumps(TINY[name]))
        pre = cfg.pop("preprocess_cfg", {})
        return cfg, pre
    path = os.path.join(os.path.dirname(open_clip.__file__), "model_configs", name + ".json")
    with open(path) as f:
        cfg = json.load(f)
    if layers:
        cfg["vision_cfg"]["layers"] = layers
        cfg["text_cfg"]["layers"] = layers
    return cfg, {}


def perturb(model, seed):
    """Layer norms, biases, layer scales and the projections made to matter."""
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):  # layer scale
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif ("ln" in name or "norm" in name) and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias") or name.endswith("_bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif name.endswith("out_proj.weight") or name.endswith("c_proj.weight"):
                p.mul_(4.0)
            elif name == "logit_scale":
                p.fill_(float(np.log(100.0)))


def probe_pixels(size):
    """clip check's fixed image: [1, 3, S, S], ((31c + 7y + 13x) mod 255) / 127.5 - 1."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(size), np.arange(size), indexing="ij")
    return ((((31 * c + 7 * y + 13 * x) % 255) / 127.5) - 1.0).astype(np.float32)[None]


def probe_ids(vocab, context):
    """clip check's fixed text: SOT (vocab - 2), 5, 17, 42 (mod vocab), EOT (vocab - 1), zero
    padding to the context."""
    ids = np.zeros((1, context), dtype=np.int64)
    ids[0, :5] = [vocab - 2, 5 % vocab, 17 % vocab, 42 % vocab, vocab - 1]
    return ids


def capture(model, pixels, ids):
    """Features and per-layer states of both towers (hooks on every block and its ls_1)."""
    states = {}
    for tower, blocks, before in [
        ("vision", model.visual.transformer.resblocks, model.visual.ln_pre),
        ("text", model.transformer.resblocks, None),
    ]:
        hidden, attn = [], []

        def after_block(_m, _inp, out, hidden=hidden):
            hidden.append(out.detach().clone())

        def after_ls1(m, inp, out, attn=attn):
            attn.append(out.detach().clone())

        handles = [b.register_forward_hook(after_block) for b in blocks]
        handles += [b.ls_1.register_forward_hook(after_ls1) for b in blocks]
        block_inputs = []
        handles += [
            b.register_forward_pre_hook(lambda _m, a, bi=block_inputs: bi.append(a[0].detach().clone()))
            for b in blocks
        ]
        states[tower] = (hidden, attn, block_inputs, handles)
    with torch.no_grad():
        image_features = model.encode_image(torch.from_numpy(pixels))
        text_features = model.encode_text(torch.from_numpy(ids))
    out = {
        "image_features": image_features,
        "text_features": text_features,
        "image_embeds": image_features / image_features.norm(dim=-1, keepdim=True),
        "text_embeds": text_features / text_features.norm(dim=-1, keepdim=True),
    }
    for tower, (hidden, attn, inputs, handles) in states.items():
        for h in handles:
            h.remove()
        out[f"{tower}.hidden_states.0"] = inputs[0]
        for i, h in enumerate(hidden):
            out[f"{tower}.hidden_states.{i + 1}"] = h
            # The residual stream after the attention branch: block input + ls_1(attention).
            out[f"{tower}.attention.{i}"] = inputs[i] + attn[i]
    return {k: v.float().contiguous() for k, v in out.items()}


def images(folder):
    """A few photo-like RGB images of different sizes and aspect ratios, saved in `folder`."""
    rng = np.random.default_rng(7)
    paths = []
    for i, (w, h, ext) in enumerate([(120, 80, "png"), (60, 100, "jpg"), (41, 41, "png")]):
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([
            (x * 255 // max(w - 1, 1)),
            (y * 255 // max(h - 1, 1)),
            ((x + y) * 3 + 40 * i) % 256,
        ], axis=-1).astype(np.float64)
        img += rng.normal(0, 12, img.shape)
        img = np.clip(img, 0, 255).astype(np.uint8)
        p = os.path.join(folder, f"image{i}.{ext}")
        Image.fromarray(img).save(p, quality=92) if ext == "jpg" else Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--layers", type=int, default=0, help="layers per tower (0: the config's)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    cfg, pre = model_cfg(a.model, a.layers)
    model = CLIP(**cfg).eval()
    perturb(model, a.seed)
    os.makedirs(a.out, exist_ok=True)
    size = cfg["vision_cfg"]["image_size"]
    pre_cfg = {
        "size": size,
        "mode": "RGB",
        "mean": pre.get("mean", list(open_clip.OPENAI_DATASET_MEAN)),
        "std": pre.get("std", list(open_clip.OPENAI_DATASET_STD)),
        "interpolation": pre.get("interpolation", "bicubic"),
        "resize_mode": pre.get("resize_mode", "shortest"),
        "fill_color": pre.get("fill_color", 0),
    }
    with open(os.path.join(a.out, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": cfg, "preprocess_cfg": pre_cfg}, f, indent=2)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(a.out, "open_clip_model.safetensors"))

    transform = image_transform(
        size, is_train=False, mean=pre_cfg["mean"], std=pre_cfg["std"],
        resize_mode=pre_cfg["resize_mode"], interpolation=pre_cfg["interpolation"],
        fill_color=pre_cfg["fill_color"],
    )
    paths = images(a.out)
    pixels = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths]).numpy()
    vocab = cfg["text_cfg"]["vocab_size"]
    if vocab == 49408:
        ids = open_clip.get_tokenizer("ViT-B-32")(PROMPTS).numpy().astype(np.int64)
    else:
        # Fixed ids below the vocabulary, SOT/EOT as CLIP lays them out, different lengths.
        ids = np.zeros((3, 77), dtype=np.int64)
        for r, n in enumerate([5, 9, 14]):
            row = [vocab - 2] + [(r * 37 + k * 11) % (vocab - 2) for k in range(n)] + [vocab - 1]
            ids[r, : len(row)] = row
    ref = capture(model, pixels, ids)
    ref["pixel_values"] = torch.from_numpy(pixels)
    ref["input_ids"] = torch.from_numpy(ids)
    save_file(ref, os.path.join(a.out, "reference.safetensors"))
    probe = capture(model, probe_pixels(size), probe_ids(vocab, cfg["text_cfg"]["context_length"]))
    np.savez(os.path.join(a.out, "probe.npz"), **{k: v.numpy() for k, v in probe.items()})
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump({
            "model": a.model, "layers": a.layers, "seed": a.seed,
            "images": [os.path.basename(p) for p in paths], "prompts": PROMPTS,
            "versions": {"open_clip": open_clip.__version__, "torch": torch.__version__},
        }, f, indent=1)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.out}: {a.model}, {n / 1e6:.1f} M parameters")


if __name__ == "__main__":
    main()
