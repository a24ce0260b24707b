//! clip: OpenAI's CLIP (ViT image encoder and masked text transformer) on memory-mapped
//! safetensors, matched to PyTorch; image decoding and CLIP preprocessing (feature `image`);
//! zero-shot classification.
//!
//! ```no_run
//! let model = clip::ClipModel::load("models/clip-vit-base-patch32")?;
//! let texts = model.encode_texts(&["a photo of a cat", "a photo of a dog"])?;
//! # Ok::<(), clip::Error>(())
//! ```

pub mod config;
pub mod error;
#[cfg(feature = "image")]
pub use clip_image as image;
pub mod layers;
pub mod model;
pub mod random;
pub mod text;
pub mod vision;
pub mod weights;

pub use clip_tensor::Precision;
pub use config::{ClipConfig, TextConfig, VisionConfig};
pub use error::{Error, Result};
pub use layers::Layout;
pub use model::{ClipModel, Embeddings, LoadOptions, Logits};
pub use weights::{NonFinite, WeightFile};
