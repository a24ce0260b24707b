//! How a model is loaded (`LoadOptions`) and what its forward passes compute
//! (`ForwardOptions`, `Truncation`): the options of `ClipModel`'s calls, with their defaults.
//!
//! Not here: loading itself (`model.rs`).

use crate::image::Preprocessor;
use crate::{Bf16Kernel, Isa, Precision};
use clip_tokenizer::Tokenizer;
use std::sync::Arc;

/// Inputs per forward pass when a call is given more (see [`LoadOptions::batch_size`]).
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// How to load a model. Build with [`LoadOptions::new`] and the `with`-style setters:
/// `LoadOptions::new().threads(2).precision(Precision::Bf16)`.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    pub(crate) threads: usize,
    pub(crate) kernels: Option<Isa>,
    pub(crate) strict: bool,
    pub(crate) precision: Option<Precision>,
    pub(crate) bf16_kernel: Option<Bf16Kernel>,
    pub(crate) validate: bool,
    pub(crate) batch_size: Option<usize>,
    pub(crate) tokenizer: Option<Arc<Tokenizer>>,
    pub(crate) preprocessor: Option<Preprocessor>,
}

impl LoadOptions {
    /// The defaults: all cores, the best kernel set, weights kept in the file's precision
    /// (bf16 for a bf16 file, f32 otherwise), tensors the model does not use listed but
    /// accepted, no scan for NaN or Inf.
    pub fn new() -> LoadOptions {
        LoadOptions::default()
    }

    /// Threads for every forward pass and for preprocessing (0 = one per core; more than
    /// four per core is refused).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }

    /// The kernel set (default: the best this CPU runs, or `CLIP_ISA`).
    pub fn kernels(mut self, isa: Isa) -> Self {
        self.kernels = Some(isa);
        self
    }

    /// Refuse tensors the model does not use (default: accept and list them, see
    /// [`ClipModel::unused_tensors`](crate::ClipModel::unused_tensors)).
    pub fn strict(mut self, yes: bool) -> Self {
        self.strict = yes;
        self
    }

    /// The precision the linear-layer weights are kept in: f32, bf16 (the activations stay
    /// f32, or are rounded to bf16 by the dot kernel: [`LoadOptions::bf16_kernel`]), or int8
    /// (weights per output channel, activations per row at each product; the projections
    /// stay f32). Results are f32 in every case. Default: the file's (int8 for a file written
    /// by `clip quantize`, bf16 for a bf16 file, else f32).
    pub fn precision(mut self, p: Precision) -> Self {
        self.precision = Some(p);
        self
    }

    /// The kind of kernel that multiplies bf16 weights (default: `CLIP_BF16`, else the faster
    /// on this CPU by a short measurement: [`Bf16Kernel::default_for`]). `Dot` rounds the
    /// activations to bf16 too; `Convert` keeps them f32. Refused at load where the kernel
    /// set lacks the kind.
    pub fn bf16_kernel(mut self, k: Bf16Kernel) -> Self {
        self.bf16_kernel = Some(k);
        self
    }

    /// Read every tensor once at load and refuse NaN or Inf with
    /// [`Error::NonFiniteWeights`](crate::Error::NonFiniteWeights) naming them (default: off).
    pub fn validate(mut self, yes: bool) -> Self {
        self.validate = yes;
        self
    }

    /// Inputs per forward pass in the `embed_*` calls that take a list (default
    /// [`DEFAULT_BATCH_SIZE`]): bounds their memory; results do not depend on it.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// Use this tokenizer instead of the folder's (or CLIP's embedded vocabulary).
    pub fn tokenizer(mut self, t: Tokenizer) -> Self {
        self.tokenizer = Some(Arc::new(t));
        self
    }

    /// Use this preprocessor instead of the folder's `preprocessor_config.json` (or CLIP's
    /// defaults), e.g. to change decoding limits.
    pub fn preprocessor(mut self, p: Preprocessor) -> Self {
        self.preprocessor = Some(p);
        self
    }
}

/// What a text longer than the model's context (77 tokens) does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Truncation {
    /// An error naming the text, as `clip.tokenize` does (the default).
    #[default]
    Refuse,
    /// The ids are cut to the context, the last one EOT, as `clip.tokenize(truncate=True)`.
    Cut,
}

/// What a forward pass computes beyond the pooled outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardOptions {
    /// Keep every layer's hidden states (and, for text, the final layer norm of every
    /// position).
    pub hidden_states: bool,
    /// Text only: compute every given position, not only up to each sequence's end-of-text
    /// token (the pooled output is the same either way; the causal mask makes it so).
    pub full_context: bool,
}

impl ForwardOptions {
    /// Pooled outputs only.
    pub fn new() -> ForwardOptions {
        ForwardOptions::default()
    }

    /// Also keep every layer's hidden states.
    pub fn with_hidden_states(mut self) -> Self {
        self.hidden_states = true;
        self
    }

    /// Text: compute every given position.
    pub fn with_full_context(mut self) -> Self {
        self.full_context = true;
        self
    }
}
