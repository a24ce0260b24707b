//! A configuration inferred from tensor shapes, for a weight file without a config file:
//! widths, MLP sizes, patch size, positions, vocabulary and layer counts are read off the
//! logical tensors (so any format works); head counts follow OpenAI's rule (width / 64), the
//! activation is QuickGELU and the epsilon 1e-5, as in OpenAI's releases. The result goes
//! through [`ClipConfig::validate`] like a config read from a file.
//!
//! Not here: key names (each format's `resolve`).

use crate::config::{TextConfig, VisionConfig};
use crate::loader::Source;
use crate::{Activation, ClipConfig, Error, Result};
use std::path::Path;

/// The most layers looked for: past [`ClipConfig::validate`]'s bound, so that a file with
/// more is refused by it, after at most this many lookups.
const MAX_PROBED_LAYERS: usize = 1025;

/// Dimension `axis` of the logical tensor `name`.
fn dim(src: &Source, name: &str, axis: usize) -> Result<usize> {
    let shape = src.shape(name).ok_or_else(|| Error::MissingTensor {
        key: src.key_for(name),
    })?;
    shape.get(axis).copied().ok_or_else(|| Error::WrongShape {
        key: src.key_for(name),
        expected: vec![0; axis + 1],
        found: shape,
    })
}

/// Layers `prefix.0`, `prefix.1`, ... that have a first layer norm: one lookup per layer.
fn count_layers(src: &Source, prefix: &str) -> usize {
    (0..MAX_PROBED_LAYERS)
        .take_while(|n| {
            src.shape(&format!("{prefix}.{n}.layer_norm1.weight"))
                .is_some()
        })
        .count()
}

/// The configuration the shapes of `src` imply; `path` names the file in errors.
pub(crate) fn from_shapes(src: &Source, path: &Path) -> Result<ClipConfig> {
    let invalid = |reason: String| Error::InvalidConfig {
        path: path.to_path_buf(),
        reason,
    };
    let conv = "vision_model.embeddings.patch_embedding.weight";
    let width = dim(src, conv, 0)?;
    let patch = dim(src, conv, 2)?;
    let positions = dim(src, "vision_model.embeddings.position_embedding.weight", 0)?;
    let grid = ((positions.saturating_sub(1)) as f64).sqrt().round() as usize;
    if grid.checked_mul(grid).and_then(|g| g.checked_add(1)) != Some(positions) {
        return Err(invalid(format!(
            "{positions} vision positions is not a square grid plus a class token"
        )));
    }
    let text_width = dim(src, "text_model.final_layer_norm.weight", 0)?;
    let mlp = |tower: &str| dim(src, &format!("{tower}.encoder.layers.0.mlp.fc1.weight"), 0);
    let act = Activation::QuickGelu;
    let cfg = ClipConfig {
        vision: VisionConfig {
            hidden_size: width,
            intermediate_size: mlp("vision_model")?,
            num_hidden_layers: count_layers(src, "vision_model.encoder.layers"),
            num_attention_heads: (width / 64).max(1),
            image_size: grid.saturating_mul(patch),
            patch_size: patch,
            num_channels: 3,
            layer_norm_eps: 1e-5,
            hidden_act: act,
        },
        text: TextConfig {
            hidden_size: text_width,
            intermediate_size: mlp("text_model")?,
            num_hidden_layers: count_layers(src, "text_model.encoder.layers"),
            num_attention_heads: (text_width / 64).max(1),
            vocab_size: dim(src, "text_model.embeddings.token_embedding.weight", 0)?,
            max_position_embeddings: dim(
                src,
                "text_model.embeddings.position_embedding.weight",
                0,
            )?,
            layer_norm_eps: 1e-5,
            hidden_act: act,
            eos_token_id: None,
        },
        projection_dim: dim(src, "visual_projection.weight", 0)?,
    };
    cfg.validate().map_err(invalid)?;
    Ok(cfg)
}
