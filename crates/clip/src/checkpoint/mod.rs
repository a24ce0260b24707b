//! Checkpoint formats. The model code names every tensor by a logical name (Hugging Face's
//! key, e.g. `vision_model.encoder.layers.3.mlp.fc1.weight`, plus `self_attn.qkv_proj` for
//! the q, k and v projections packed as one); each format maps those names to where its files
//! keep the tensor ([`Stored`]), and says how its configuration is read.
//!
//! Adding a format: a file here with a `resolve` (logical name -> [`Stored`]) and a config
//! reader, and a variant of [`Format`]; `docs/architecture.md` has the recipe.
//! Not here: reading tensors (`loader.rs`, `weights.rs`), the model (`vision.rs`, `text.rs`).

pub(crate) mod hf;
pub(crate) mod infer;
pub(crate) mod open_clip;
pub(crate) mod openai;

use crate::weights::WeightFile;

/// How a checkpoint names its tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Hugging Face `CLIPModel`: `vision_model.encoder.layers.N.self_attn.q_proj.weight`, ...
    HuggingFace,
    /// OpenAI's `clip` and open_clip's state dicts: `visual.transformer.resblocks.N.attn.in_proj_weight`, ...
    OpenAi,
}

/// Where a format keeps a logical tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Under this key, in the logical shape.
    Key(String),
    /// Under this key, as the transpose of a 2-D logical shape (`[in, out]` for a weight
    /// used as `x @ W`).
    Transposed(String),
    /// The logical tensor is these tensors stacked along dimension 0, in equal parts.
    Stacked(Vec<String>),
}

impl Format {
    /// The format whose marker tensor the file holds.
    pub(crate) fn detect(wf: &WeightFile) -> Option<Format> {
        [Format::HuggingFace, Format::OpenAi]
            .into_iter()
            .find(|f| wf.contains(f.marker()))
    }

    /// A tensor every file of this format has (the patch embedding).
    fn marker(self) -> &'static str {
        match self {
            Format::HuggingFace => "vision_model.embeddings.patch_embedding.weight",
            Format::OpenAi => "visual.conv1.weight",
        }
    }

    /// Where the file keeps the logical tensor `name`.
    pub(crate) fn resolve(self, name: &str) -> Stored {
        match self {
            Format::HuggingFace => hf::resolve(name),
            Format::OpenAi => openai::resolve(name),
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::HuggingFace => "Hugging Face",
            Format::OpenAi => "OpenAI",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
