//! clip: the CLIP model, image preprocessing and zero-shot classification.
