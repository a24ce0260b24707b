//! clip: OpenAI's CLIP (the ViT image encoder and the causal text transformer) on
//! memory-mapped safetensors, matched to PyTorch; image input bit-exact with Pillow and
//! `CLIPImageProcessor` ([`image`]); similarity and zero-shot classification.
//!
//! ```no_run
//! use clip::{ClipModel, Truncation};
//! let model = ClipModel::load("models/clip-vit-base-patch32")?;
//! let images = model.embed_image_files(&["cat.jpg"])?;
//! let texts = model.embed_texts(&["a photo of a cat", "a diagram"], Truncation::Refuse)?;
//! let probs = model.similarity(&images, &texts)?.probs();
//! # Ok::<(), clip::Error>(())
//! ```
//!
//! Build programs that use it in release mode (or with `[profile.dev.package."*"]
//! opt-level = 3`): unoptimised, the kernels run about 20 times slower.

#![warn(missing_docs)]

mod checkpoint;
mod config;
mod embeddings;
mod error;
pub mod hub;
mod layers;
mod loader;
mod model;
mod options;
mod quantize;
mod random;
mod templates;
mod text;
mod vision;
mod weights;
mod zero_shot;

pub use checkpoint::Format;
pub use clip_image as image;
pub use clip_kernels::{Activation, Bf16Kernel, Isa};
pub use clip_tensor::Error as TensorError;
pub use clip_tensor::{available_cores, max_threads, DType, Precision};
pub use clip_tokenizer::{Error as TokenizerError, Tokenizer};
pub use config::{ClipConfig, TextConfig, TextPool, VisionConfig, VisionPool};
pub use embeddings::{Embeddings, Features, Similarity};
pub use error::{Error, NonFinite, Result};
pub use image::{ImageInput, PixelValues, Preprocessor, RgbImage};
pub use model::ClipModel;
pub use options::{ForwardOptions, LoadOptions, Truncation, DEFAULT_BATCH_SIZE};
pub use quantize::{quantize_model, QuantizeReport};
pub use templates::IMAGENET_TEMPLATES;
pub use text::TextOutput;
pub use vision::VisionOutput;
pub use zero_shot::{Prediction, ZeroShotClassifier};

#[doc(hidden)]
pub use random::random_safetensors;
