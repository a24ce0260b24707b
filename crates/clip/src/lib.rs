//! clip: the CLIP model, image preprocessing and zero-shot classification.

pub mod error;
#[cfg(feature = "image")]
pub mod image;

pub use error::{Error, Result};
