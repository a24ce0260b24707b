#!/usr/bin/env python3
"""Write the hostile weight folders of issue #21 (configuration inferred from shapes).

Each case is a folder with a `model.safetensors` and a `preprocessor_config.json`; most have no
`config.json`, so the loader reads the configuration off the tensor shapes (and accepts only an
OpenAI release's); the `config_*` cases have a `config.json` with a hostile value. None of them is a
usable model; each must be refused with one line, quickly, without a panic and without a
large allocation. `tools/clip-cli/tests/hostile_weights.rs` runs `clip embed image` and
`clip embed text` on every folder.

    python3 tools/make_hostile_weights.py OUT_DIR      # writes OUT_DIR/<case>/ for each case

Only the standard library: the files are written by hand (8-byte header length, JSON
header, data), so shapes that PyTorch would refuse to build can be declared.
"""

import json
import os
import struct
import sys

PREPROCESSOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}


def safetensors(tensors):
    """Bytes of a safetensors file; `tensors` maps name -> (shape, dtype); data is zeros."""
    header = {}
    offset = 0
    for name, (shape, dtype) in tensors.items():
        n = 1
        for d in shape:
            n *= d
        size = n * {"F32": 4, "F16": 2, "BF16": 2}[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"\0" * offset


def hf_model(width, mlp, proj, vocab, patch=32, positions=50, text_width=None, layers=1):
    """The tensors of a Hugging Face CLIP with the given sizes (F32, zeros)."""
    tw = width if text_width is None else text_width
    t = {}
    v = "vision_model"
    t[f"{v}.embeddings.patch_embedding.weight"] = ([width, 3, patch, patch], "F32")
    t[f"{v}.embeddings.class_embedding"] = ([width], "F32")
    t[f"{v}.embeddings.position_embedding.weight"] = ([positions, width], "F32")
    for ln in ["pre_layrnorm", "post_layernorm"]:
        t[f"{v}.{ln}.weight"] = ([width], "F32")
        t[f"{v}.{ln}.bias"] = ([width], "F32")
    for tower, c in [("vision_model", width), ("text_model", tw)]:
        for i in range(layers):
            p = f"{tower}.encoder.layers.{i}"
            for ln in ["layer_norm1", "layer_norm2"]:
                t[f"{p}.{ln}.weight"] = ([c], "F32")
                t[f"{p}.{ln}.bias"] = ([c], "F32")
            for name in ["q_proj", "k_proj", "v_proj", "out_proj"]:
                t[f"{p}.self_attn.{name}.weight"] = ([c, c], "F32")
                t[f"{p}.self_attn.{name}.bias"] = ([c], "F32")
            t[f"{p}.mlp.fc1.weight"] = ([mlp, c], "F32")
            t[f"{p}.mlp.fc1.bias"] = ([mlp], "F32")
            t[f"{p}.mlp.fc2.weight"] = ([c, mlp], "F32")
            t[f"{p}.mlp.fc2.bias"] = ([c], "F32")
    t["text_model.embeddings.token_embedding.weight"] = ([vocab, tw], "F32")
    t["text_model.embeddings.position_embedding.weight"] = ([77, tw], "F32")
    t["text_model.final_layer_norm.weight"] = ([tw], "F32")
    t["text_model.final_layer_norm.bias"] = ([tw], "F32")
    t["visual_projection.weight"] = ([proj, width], "F32")
    t["text_projection.weight"] = ([proj, tw], "F32")
    t["logit_scale"] = ([], "F32")
    return t


def hf_config(width, mlp, proj, vocab, patch, image, layers=1, **extra):
    """A Hugging Face config.json for `hf_model`'s sizes (heads 1), with `extra` overrides."""
    vision = {"hidden_size": width, "intermediate_size": mlp, "num_hidden_layers": layers,
              "num_attention_heads": 1, "patch_size": patch, "image_size": image}
    text = {"hidden_size": width, "intermediate_size": mlp, "num_hidden_layers": layers,
            "num_attention_heads": 1, "vocab_size": vocab, "max_position_embeddings": 77}
    vision.update(extra.pop("vision", {}))
    text.update(extra.pop("text", {}))
    return {"projection_dim": proj, "vision_config": vision, "text_config": text, **extra}


def config_cases():
    """name -> (bytes of model.safetensors, config.json): configurations from a file."""
    small = safetensors(hf_model(64, 256, 16, 100))
    return {
        # 20,000 layer-like keys beside a valid small model: loads, the extras listed.
        "many_layer_keys_valid_model": (
            safetensors(
                {**hf_model(64, 256, 16, 100),
                 **{f"vision_model.encoder.layers.{i}.z": ([0], "F32") for i in range(20000)}}
            ),
            hf_config(64, 256, 16, 100, 32, 224),
        ),
        "config_patch_larger_than_image": (
            small, hf_config(64, 256, 16, 100, 32, 224, vision={"patch_size": 448})
        ),
        "config_eps_zero_in_f32": (
            small, hf_config(64, 256, 16, 100, 32, 224, vision={"layer_norm_eps": 1e-300})
        ),
        "config_width_zero": (small, hf_config(64, 256, 16, 100, 32, 224, vision={"hidden_size": 0})),
        "config_huge_vocab": (small, hf_config(64, 256, 16, 100, 32, 224, text={"vocab_size": 1 << 30})),
    }


def cases():
    """name -> bytes of model.safetensors (no config: the configuration comes from shapes)."""
    out = {}
    # Every width 0: a small file whose shapes would divide by zero.
    out["all_widths_zero"] = safetensors(hf_model(0, 0, 0, 0))
    # Width 0 with a patch embedding of 2^31 x 2^31 (zero elements: passes size checks).
    t = hf_model(0, 0, 0, 0)
    t["vision_model.embeddings.patch_embedding.weight"] = ([0, 3, 1 << 31, 1 << 31], "F32")
    out["huge_patch_zero_width"] = safetensors(t)
    t = hf_model(0, 0, 0, 0)
    t["vision_model.embeddings.patch_embedding.weight"] = ([0, 3, 1 << 20, 1 << 20], "F32")
    out["patch_2_20_zero_width"] = safetensors(t)
    # 20,000 zero-size tensors named like layers (counting layers was quadratic in keys).
    t = hf_model(0, 0, 0, 0)
    for i in range(20000):
        t[f"vision_model.encoder.layers.{i}.z"] = ([0], "F32")
    out["many_layer_keys"] = safetensors(t)
    # One size zero at a time in an otherwise valid small model.
    out["intermediate_zero"] = safetensors(hf_model(64, 0, 16, 100))
    out["projection_zero"] = safetensors(hf_model(64, 256, 0, 100))
    out["vocab_zero"] = safetensors(hf_model(64, 256, 16, 0))
    # More layers than any CLIP has (1,100 of width 8): refused by the layer bound.
    out["too_many_layers"] = safetensors(hf_model(8, 8, 8, 8, patch=2, positions=5, layers=1100))
    # A header of ~90 MB with 600,000 empty tensors (under safetensors' own 100 MB cap).
    pad = "x" * 60
    out["huge_header"] = safetensors(
        {f"vision_model.unused.{pad}.{i:07d}": ([0], "F32") for i in range(600000)}
    )
    # 150,000 empty tensors in a header under the size bound (~8 MB): the tensor bound.
    out["many_tensors"] = safetensors({f"t{i:06d}": ([0], "F32") for i in range(150000)})
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_hostile_weights.py OUT_DIR")
    root = sys.argv[1]
    folders = {name: (data, None) for name, data in cases().items()}
    folders.update(config_cases())
    for name, (data, config) in folders.items():
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(data)
        with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
            json.dump(PREPROCESSOR, f)
        if config is not None:
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(config, f)
        print(f"{d} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
