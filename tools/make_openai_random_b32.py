"""Writes a random-weight ViT-B/32 in OpenAI's checkpoint format (the state dict that
`clip.load(path)` builds a model from), so that `clip-retrieval inference --clip_model PATH`
runs without downloading weights (docs/scale.md's comparison). Its embeddings mean nothing;
its speed is the real model's.

    python3 tools/make_openai_random_b32.py OUT.pt

Not here: the weights our engine is measured with (`--random-weights`, clip_rs.CLIPModel.random).
"""

import sys

import torch
from clip.model import CLIP, convert_weights  # noqa: F401  (openai-clip / clip-anytorch)

torch.manual_seed(0)
model = CLIP(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
             vision_patch_size=32, context_length=77, vocab_size=49408,
             transformer_width=512, transformer_heads=8, transformer_layers=12)
torch.save(model.state_dict(), sys.argv[1])
