//! A configuration for a weight file without a config file: widths, MLP sizes, patch size,
//! positions, vocabulary and layer counts are read off the logical tensors (so any format
//! works), and accepted only when they are one of OpenAI's releases
//! ([`ClipConfig::openai_releases`]), whose head counts and activation (QuickGELU) are known.
//! Anything else is refused with the config file to add: the activation and the head count
//! cannot be seen in the shapes, and guessing them gives wrong embeddings without an error
//! (an open_clip ViT-H/14 trained with exact GELU loaded as QuickGELU, say).
//!
//! Not here: key names (each format's `resolve`).

use crate::loader::Source;
use crate::{ClipConfig, Error, Result};
use std::path::Path;

/// The most layers looked for: past [`ClipConfig::validate`]'s bound, so that a file with
/// more is refused by it, after at most this many lookups.
const MAX_PROBED_LAYERS: usize = 1025;

/// Where the shapes come from: a logical name's shape, and the key a file spells it with.
pub(crate) trait Shapes {
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    fn key_for(&self, name: &str) -> String;
}

impl Shapes for Source {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        Source::shape(self, name)
    }

    fn key_for(&self, name: &str) -> String {
        Source::key_for(self, name)
    }
}

/// Dimension `axis` of the logical tensor `name`.
fn dim(src: &impl Shapes, name: &str, axis: usize) -> Result<usize> {
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
fn count_layers(src: &impl Shapes, prefix: &str) -> usize {
    (0..MAX_PROBED_LAYERS)
        .take_while(|n| {
            src.shape(&format!("{prefix}.{n}.layer_norm1.weight"))
                .is_some()
        })
        .count()
}

/// The configuration the shapes of `src` imply; `path` names the file in errors.
pub(crate) fn from_shapes(src: &impl Shapes, path: &Path) -> Result<ClipConfig> {
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
    let seen = Sizes {
        vision: [
            width,
            mlp("vision_model")?,
            count_layers(src, "vision_model.encoder.layers"),
            grid.saturating_mul(patch),
            patch,
        ],
        text: [
            text_width,
            mlp("text_model")?,
            count_layers(src, "text_model.encoder.layers"),
            dim(src, "text_model.embeddings.token_embedding.weight", 0)?,
            dim(src, "text_model.embeddings.position_embedding.weight", 0)?,
        ],
        projection: dim(src, "visual_projection.weight", 0)?,
    };
    for (_, release) in ClipConfig::openai_releases() {
        if Sizes::of(&release) == seen {
            return Ok(release);
        }
    }
    Err(invalid(format!(
        "no config file, and the shapes ({seen}) are none of OpenAI's releases ({}); the \
         activation and head counts cannot be read from shapes: put the checkpoint's config \
         file beside the weights (config.json for Hugging Face, open_clip_config.json for \
         open_clip)",
        ClipConfig::openai_releases()
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The sizes shapes show: vision `[width, mlp, layers, image, patch]`, text `[width, mlp,
/// layers, vocabulary, context]`, the projection.
#[derive(PartialEq, Eq)]
struct Sizes {
    vision: [usize; 5],
    text: [usize; 5],
    projection: usize,
}

impl Sizes {
    fn of(c: &ClipConfig) -> Sizes {
        let (v, t) = (&c.vision, &c.text);
        Sizes {
            vision: [
                v.hidden_size,
                v.intermediate_size,
                v.num_hidden_layers,
                v.image_size,
                v.patch_size,
            ],
            text: [
                t.hidden_size,
                t.intermediate_size,
                t.num_hidden_layers,
                t.vocab_size,
                t.max_position_embeddings,
            ],
            projection: c.projection_dim,
        }
    }
}

impl std::fmt::Display for Sizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [w, m, l, s, p] = self.vision;
        let [tw, tm, tl, v, c] = self.text;
        write!(
            f,
            "vision width {w}, MLP {m}, {l} layers, {s}px in {p}px patches; text width {tw}, \
             MLP {tm}, {tl} layers, vocabulary {v}, context {c}; embedding {}",
            self.projection
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The logical shapes a model of `c` has (the ones inference reads).
    struct Of(HashMap<String, Vec<usize>>);

    impl Shapes for Of {
        fn shape(&self, name: &str) -> Option<Vec<usize>> {
            self.0.get(name).cloned()
        }
        fn key_for(&self, name: &str) -> String {
            name.to_string()
        }
    }

    fn shapes(c: &ClipConfig) -> Of {
        let (v, t) = (&c.vision, &c.text);
        let mut m = HashMap::new();
        let p = v.patch_size;
        m.insert(
            "vision_model.embeddings.patch_embedding.weight".into(),
            vec![v.hidden_size, 3, p, p],
        );
        m.insert(
            "vision_model.embeddings.position_embedding.weight".into(),
            vec![v.num_positions(), v.hidden_size],
        );
        m.insert(
            "text_model.final_layer_norm.weight".into(),
            vec![t.hidden_size],
        );
        m.insert(
            "text_model.embeddings.token_embedding.weight".into(),
            vec![t.vocab_size, t.hidden_size],
        );
        m.insert(
            "text_model.embeddings.position_embedding.weight".into(),
            vec![t.max_position_embeddings, t.hidden_size],
        );
        m.insert(
            "visual_projection.weight".into(),
            vec![c.projection_dim, v.hidden_size],
        );
        for (tower, n, mlp, w) in [
            (
                "vision_model",
                v.num_hidden_layers,
                v.intermediate_size,
                v.hidden_size,
            ),
            (
                "text_model",
                t.num_hidden_layers,
                t.intermediate_size,
                t.hidden_size,
            ),
        ] {
            for i in 0..n {
                m.insert(
                    format!("{tower}.encoder.layers.{i}.layer_norm1.weight"),
                    vec![w],
                );
            }
            m.insert(
                format!("{tower}.encoder.layers.0.mlp.fc1.weight"),
                vec![mlp, w],
            );
        }
        Of(m)
    }

    #[test]
    fn only_openai_releases_are_taken_from_shapes() {
        for (name, release) in ClipConfig::openai_releases() {
            let got = from_shapes(&shapes(&release), Path::new("m")).unwrap();
            assert_eq!(got, release, "{name}");
        }
        // One size off (an open_clip ViT-H/14, a B/32 with two more layers): refused, with
        // the config files to add.
        let mut h14 = ClipConfig::vit_large_patch14();
        h14.vision.hidden_size = 1280;
        h14.vision.intermediate_size = 5120;
        h14.vision.num_hidden_layers = 32;
        let mut deeper = ClipConfig::vit_base_patch32();
        deeper.vision.num_hidden_layers = 14;
        for c in [h14, deeper] {
            let e = from_shapes(&shapes(&c), Path::new("m"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("none of OpenAI's releases"), "{e}");
            assert!(
                e.contains("open_clip_config.json") && e.contains("config.json"),
                "{e}"
            );
        }
    }
}
