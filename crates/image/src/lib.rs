//! clip-image: image input for CLIP. Decodes PNG and JPEG, converts to RGB the way Pillow
//! does, and preprocesses exactly like Hugging Face's `CLIPImageProcessor` (PIL backend).
//!
//! Pipeline (see `docs/preprocessing.md` for every quirk we reproduce):
//! `decode` (PNG via `png`, JPEG via our libjpeg-turbo-exact `jpeg` module ->
//! Pillow-equivalent RGB u8) -> optional EXIF orientation ->
//! `resize` (shortest edge, PIL bicubic, two u8 passes) -> center crop (HF offsets,
//! zero padding) -> rescale 1/255 in f64 -> normalize in f32 -> `[3, H, W]`.
//!
//! Decoding is the default feature `decode`; without it, decoded RGB images are still
//! preprocessed (files and encoded bytes are refused with a typed error).
//!
//! Not here: tensors and models. Results are plain `Vec<f32>` with a shape
//! ([`PixelValues`]); the `clip` crate re-exports this crate as `clip::image`.

#[cfg(feature = "decode")]
mod budget;
#[cfg(feature = "decode")]
mod convert;
#[cfg(feature = "decode")]
mod decode;
mod error;
#[cfg(feature = "decode")]
mod exif;
#[cfg(feature = "decode")]
mod jpeg;
mod preprocess;
#[cfg(feature = "decode")]
mod probe;
pub mod resize;

#[cfg(feature = "decode")]
pub use budget::{decode_memory_budget, set_decode_memory_budget, DEFAULT_DECODE_MEMORY_BUDGET};
#[cfg(feature = "decode")]
pub use decode::{decode_bytes, decode_file};
pub use error::{Error, Result};
pub use preprocess::{
    CropRounding, ImageInput, OpenClipResize, PixelValues, PreprocessConfig, Preprocessor,
    ResizeTarget, CLIP_MEAN, CLIP_STD,
};
#[cfg(feature = "decode")]
pub use probe::ImageFormat;
pub use resize::Filter;

/// What to do with transparency (an alpha channel, or a PNG `tRNS` colour key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AlphaMode {
    /// Composite over opaque white with Pillow's integer `alpha_composite`
    /// (what transformers 5 does). The default.
    #[default]
    CompositeOverWhite,
    /// Ignore alpha, keep the colour channels (OpenAI's pipeline, transformers 4).
    Drop,
}

/// Options for turning an encoded file into RGB pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Largest accepted `width * height`, checked from the header before decoding.
    pub max_pixels: u64,
    /// How transparency becomes RGB.
    pub alpha: AlphaMode,
    /// Apply the EXIF orientation tag (Pillow's `ImageOps.exif_transpose`).
    /// Off by default because the reference pipeline ignores it.
    pub apply_exif_orientation: bool,
}

/// Default pixel limit: 100 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_pixels: DEFAULT_MAX_PIXELS,
            alpha: AlphaMode::default(),
            apply_exif_orientation: false,
        }
    }
}

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `R G B`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    /// `height * width * 3` bytes.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Wraps interleaved RGB bytes; `None` if the length is not `width * height * 3`.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Option<Self> {
        let expected = width.checked_mul(height)?.checked_mul(3)?;
        (data.len() == expected).then_some(RgbImage {
            width,
            height,
            data,
        })
    }
}
