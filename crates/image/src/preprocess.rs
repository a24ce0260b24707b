//! CLIP preprocessing as transformers 5's `CLIPImageProcessor` (PIL backend):
//! resize the shortest edge, center crop (zero padding if smaller), rescale by
//! 1/255 in f64, normalise in f32, lay out `[3, H, W]`; batches `[N, 3, H, W]`
//! in parallel with rayon, within the process's decoding memory budget (`budget.rs`).
//! Settings come from `preprocessor_config.json`.
//!
//! Arithmetic order matches NumPy's: `x = f32(f64(u8) * rescale_factor)`, then
//! `(x - f32(mean)) / f32(std)` in f32, so results are bit-identical.
//!
//! open_clip's `image_transform` (torchvision on PIL images) differs in two places, each a
//! setting here: the crop offset rounds half to even (`CropRounding::Torchvision`), and its
//! `longest` mode resizes the longest edge and pads with a fill value
//! (`ResizeTarget::LongestEdge`, `pad_value`); bilinear is `Filter::Bilinear`. Its rescale,
//! `f32(v) / 255` in f32, gives the same floats as HF's `f32(f64(v) / 255)` for all 256
//! values (checked with NumPy), so one rescale serves both.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

#[cfg(feature = "decode")]
use super::decode::{decode_reserved, read_input};
use super::resize::{resize, resize_window, Filter, Window};
use super::{DecodeOptions, RgbImage};
use crate::{Error, Result};

/// OpenAI CLIP's normalisation mean (RGB).
pub const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// OpenAI CLIP's normalisation std (RGB).
pub const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// How the resize step picks its output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeTarget {
    /// Shortest edge to `n`, long edge `int(n * long / short)` (HF and torchvision, truncated).
    ShortestEdge(usize),
    /// Longest edge to `n`, each side `round(side * n / longest)` half to even, as open_clip's
    /// `ResizeKeepRatio(longest=1)` computes it.
    LongestEdge(usize),
    /// Exact `height x width` (open_clip's `squash`).
    Exact {
        /// Output rows.
        height: usize,
        /// Output columns.
        width: usize,
    },
}

/// Where a center crop starts when the image and the crop differ by an odd number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CropRounding {
    /// HF's `center_crop`: `(len - crop) // 2` into the image; a smaller image sits
    /// `ceil((crop - len) / 2)` into the padded canvas.
    #[default]
    Hf,
    /// torchvision's `center_crop`: `round((len - crop) / 2)`, half to even; a smaller image
    /// sits `(crop - len) // 2` into the canvas.
    Torchvision,
}

/// The processor settings (a subset of HF's `preprocessor_config.json`, and the settings
/// open_clip's transform implies).
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessConfig {
    /// Resize at all.
    pub do_resize: bool,
    /// The resize's output size.
    pub size: ResizeTarget,
    /// The resampling filter.
    pub resample: Filter,
    /// Center-crop (or pad) to `crop_height x crop_width`.
    pub do_center_crop: bool,
    /// Rows of the crop.
    pub crop_height: usize,
    /// Columns of the crop.
    pub crop_width: usize,
    /// Crop offsets as HF or as torchvision round them.
    pub crop_rounding: CropRounding,
    /// The pixel value (0..=255, before rescale and normalisation) of padding where the
    /// image is smaller than the crop.
    pub pad_value: u8,
    /// Rescale 8-bit values: `f32(f64(v) * rescale_factor)`.
    pub do_rescale: bool,
    /// The rescale factor (1/255).
    pub rescale_factor: f64,
    /// Normalise: `(x - mean) / std` per channel, in f32.
    pub do_normalize: bool,
    /// Per-channel mean (RGB).
    pub image_mean: [f64; 3],
    /// Per-channel standard deviation (RGB).
    pub image_std: [f64; 3],
}

impl Default for PreprocessConfig {
    /// openai/clip-vit-base-patch32: shortest edge 224, crop 224x224.
    fn default() -> Self {
        PreprocessConfig {
            do_resize: true,
            size: ResizeTarget::ShortestEdge(224),
            resample: Filter::Bicubic,
            do_center_crop: true,
            crop_height: 224,
            crop_width: 224,
            crop_rounding: CropRounding::Hf,
            pad_value: 0,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
        }
    }
}

/// open_clip's `resize_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenClipResize {
    /// Shortest edge to the size, then a center crop (`shortest`, the default).
    Shortest,
    /// Longest edge to the size, then padding with the fill value (`longest`).
    Longest,
    /// Straight to size x size (`squash`).
    Squash,
}

impl PreprocessConfig {
    /// open_clip's `image_transform` for inference, on a square `size`: resize (`mode`,
    /// `filter`), center crop or pad with `fill`, `ToTensor`, `Normalize(mean, std)`.
    pub fn open_clip(
        size: usize,
        mode: OpenClipResize,
        filter: Filter,
        fill: u8,
        mean: [f64; 3],
        std: [f64; 3],
    ) -> PreprocessConfig {
        let target = match mode {
            OpenClipResize::Shortest => ResizeTarget::ShortestEdge(size),
            OpenClipResize::Longest => ResizeTarget::LongestEdge(size),
            OpenClipResize::Squash => ResizeTarget::Exact {
                height: size,
                width: size,
            },
        };
        PreprocessConfig {
            size: target,
            resample: filter,
            crop_height: size,
            crop_width: size,
            crop_rounding: CropRounding::Torchvision,
            pad_value: if mode == OpenClipResize::Longest {
                fill
            } else {
                0
            },
            image_mean: mean,
            image_std: std,
            ..PreprocessConfig::default()
        }
    }
}

mod config_json;

impl PreprocessConfig {
    /// Reads `dir/preprocessor_config.json` if present, else the CLIP defaults.
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("preprocessor_config.json");
        match std::fs::read(&path) {
            Ok(bytes) => Self::from_json(&bytes, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Parses a `preprocessor_config.json`; `path` is for error messages.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        config_json::parse(bytes, path)
    }

    /// Output `(height, width)` of the resize step for an input size.
    pub fn resize_size(&self, height: usize, width: usize) -> (usize, usize) {
        match self.size {
            ResizeTarget::Exact { height, width } => (height, width),
            ResizeTarget::LongestEdge(n) => {
                // timm's ResizeKeepRatio: ratio = max(h / n, w / n), side = round(side / ratio).
                let ratio = (height as f64 / n as f64).max(width as f64 / n as f64);
                let side = |x: usize| (x as f64 / ratio).round_ties_even() as usize;
                (side(height), side(width))
            }
            ResizeTarget::ShortestEdge(n) => {
                let (short, long) = if width <= height {
                    (width, height)
                } else {
                    (height, width)
                };
                // Python: int(n * long / short), a correctly rounded f64 division, truncated.
                let new_long = ((n as f64 * long as f64) / short as f64) as usize;
                if width <= height {
                    (new_long, n)
                } else {
                    (n, new_long)
                }
            }
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::InvalidArgument {
                reason: reason.to_string(),
            })
        };
        let zero_size = match self.size {
            ResizeTarget::ShortestEdge(n) | ResizeTarget::LongestEdge(n) => n == 0,
            ResizeTarget::Exact { height, width } => height == 0 || width == 0,
        };
        if self.do_resize && zero_size {
            return bad("resize size must be positive");
        }
        if self.do_center_crop && (self.crop_height == 0 || self.crop_width == 0) {
            return bad("crop size must be positive");
        }
        // A tiny std (1e-320 in a config file) would make every value infinite.
        if self.do_normalize
            && self
                .image_std
                .iter()
                .chain(&self.image_mean)
                .any(|v| !v.is_finite())
        {
            return bad("image_mean and image_std must be finite");
        }
        if self.do_normalize && self.image_std.iter().any(|s| s.abs() < 1e-6) {
            return bad("image_std must not be (nearly) zero");
        }
        Ok(())
    }
}

/// One image to preprocess: a file, encoded bytes held in memory, or decoded RGB pixels.
#[derive(Clone, Copy, Debug)]
pub enum ImageInput<'a> {
    /// A PNG or JPEG file.
    Path(&'a Path),
    /// An encoded PNG or JPEG in memory; `name` labels errors (e.g. `"upload 3"`).
    Bytes {
        /// The encoded file.
        bytes: &'a [u8],
        /// What errors call it.
        name: &'a str,
    },
    /// Decoded 8-bit RGB pixels.
    Rgb(&'a RgbImage),
}

impl ImageInput<'_> {
    /// What errors call this input.
    pub fn label(&self) -> PathBuf {
        match self {
            ImageInput::Path(p) => p.to_path_buf(),
            ImageInput::Bytes { name, .. } => PathBuf::from(name),
            ImageInput::Rgb(img) => {
                PathBuf::from(format!("<{}x{} RGB image>", img.width, img.height))
            }
        }
    }
}

/// Preprocessed pixels: `data` in row-major order with `shape`
/// (`[1, 3, H, W]` for one image, `[N, 3, H, W]` for a batch).
#[derive(Clone, Debug, PartialEq)]
pub struct PixelValues {
    pub data: Vec<f32>,
    pub shape: [usize; 4],
}

/// Decoding options plus processor settings; cheap to share across threads.
#[derive(Clone, Debug, Default)]
pub struct Preprocessor {
    pub config: PreprocessConfig,
    pub decode: DecodeOptions,
}

impl Preprocessor {
    /// A preprocessor with the settings of a model folder (or CLIP defaults).
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        Ok(Preprocessor {
            config: PreprocessConfig::from_model_dir(dir)?,
            decode: DecodeOptions::default(),
        })
    }

    /// Resize step only: the u8 RGB image HF hands to center crop.
    pub fn resize(&self, img: &RgbImage) -> Result<RgbImage> {
        self.config.validate()?;
        if !self.config.do_resize {
            return Ok(img.clone());
        }
        let (h, w) = self.config.resize_size(img.height, img.width);
        if h == 0 || w == 0 || (h as u64).saturating_mul(w as u64) > self.decode.max_pixels {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{}x{} image resizes to {w}x{h} (limit {} pixels)",
                    img.width, img.height, self.decode.max_pixels
                ),
            });
        }
        let data = resize(self.config.resample, &img.data, img.width, img.height, w, h);
        Ok(RgbImage {
            width: w,
            height: h,
            data,
        })
    }

    /// Full pipeline on decoded RGB: `[3, H, W]` f32 with `shape[0] == 1`.
    /// Only the part of the resized image that survives the crop is computed.
    pub fn preprocess_rgb(&self, img: &RgbImage) -> Result<PixelValues> {
        self.config.validate()?;
        let (rh, rw) = if self.config.do_resize {
            self.config.resize_size(img.height, img.width)
        } else {
            (img.height, img.width)
        };
        if rh == 0 || rw == 0 {
            return Err(Error::InvalidArgument {
                reason: format!("{}x{} image resizes to {rw}x{rh}", img.width, img.height),
            });
        }
        let (ch, cw) = if self.config.do_center_crop {
            (self.config.crop_height, self.config.crop_width)
        } else {
            (rh, rw)
        };
        // The output is allocated from sizes in a config file and the image's aspect ratio
        // (a 5000x1 image without center crop resizes to 1,120,000 x 224): bound it by the
        // same pixel limit as decoding.
        if (ch as u64).saturating_mul(cw as u64) > self.decode.max_pixels {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{}x{} image preprocesses to {cw}x{ch}, more than the limit of {} pixels",
                    img.width, img.height, self.decode.max_pixels
                ),
            });
        }
        // HF: top = (H - ch) // 2 when the image is large enough; otherwise the image sits
        // at ceil((ch - H) / 2) inside a padded canvas (torchvision rounds both other ways).
        let rounding = self.config.crop_rounding;
        let (src_y, dst_y, rows) = crop_span(rh, ch, rounding);
        let (src_x, dst_x, cols) = crop_span(rw, cw, rounding);
        let win = Window {
            x0: src_x,
            y0: src_y,
            width: cols,
            height: rows,
        };
        let part = if self.config.do_resize {
            let filter = self.config.resample;
            resize_window(filter, &img.data, img.width, img.height, rw, rh, win)
        } else {
            let mut out = Vec::with_capacity(rows * cols * 3);
            for y in src_y..src_y + rows {
                let row = (y * img.width + src_x) * 3;
                out.extend_from_slice(&img.data[row..row + cols * 3]);
            }
            out
        };
        let mut data = vec![0f32; 3 * ch * cw];
        self.normalize_into(&part, cols, (dst_y, dst_x), (ch, cw), &mut data);
        Ok(PixelValues {
            data,
            shape: [1, 3, ch, cw],
        })
    }

    /// Decodes and preprocesses a file, within the decoding memory budget.
    #[cfg(feature = "decode")]
    pub fn preprocess_file(&self, path: &Path) -> Result<PixelValues> {
        let bytes = read_input(path, &self.decode)?;
        self.preprocess_bytes(&bytes, path)
    }

    /// Decodes and preprocesses encoded bytes; `name` labels errors. The decoded image is
    /// preprocessed within the decode's reservation of the memory budget (`budget.rs`).
    #[cfg(feature = "decode")]
    pub fn preprocess_bytes(&self, bytes: &[u8], name: &Path) -> Result<PixelValues> {
        let (img, _reservation) = decode_reserved(bytes, name, &self.decode)?;
        self.preprocess_rgb(&img)
    }

    /// Preprocesses files in parallel into one `[N, 3, H, W]` batch. Every image
    /// must produce the same size (true whenever center crop is on).
    pub fn preprocess_batch<P: AsRef<Path> + Sync>(&self, paths: &[P]) -> Result<PixelValues> {
        let inputs: Vec<ImageInput<'_>> =
            paths.iter().map(|p| ImageInput::Path(p.as_ref())).collect();
        self.preprocess_inputs(&inputs)
    }

    /// Preprocesses one input of any kind.
    pub fn preprocess_input(&self, input: &ImageInput<'_>) -> Result<PixelValues> {
        match *input {
            #[cfg(feature = "decode")]
            ImageInput::Path(p) => self.preprocess_file(p),
            #[cfg(feature = "decode")]
            ImageInput::Bytes { bytes, name } => self.preprocess_bytes(bytes, Path::new(name)),
            ImageInput::Rgb(img) => self.preprocess_rgb(img),
            #[cfg(not(feature = "decode"))]
            _ => Err(Error::UnsupportedFormat {
                path: input.label(),
                format: "an encoded image (this build has no decoders: clip-image's feature \
                         `decode`, clip's `image`)"
                    .into(),
            }),
        }
    }

    /// Decodes and preprocesses inputs of any kind in parallel (on the current rayon pool)
    /// into one `[N, 3, H, W]` batch, in order. Every image must produce the same size (true
    /// whenever center crop is on).
    pub fn preprocess_inputs(&self, inputs: &[ImageInput<'_>]) -> Result<PixelValues> {
        let items: Vec<PixelValues> = inputs
            .par_iter()
            .map(|i| self.preprocess_input(i))
            .collect::<Result<_>>()?;
        stack(items, inputs.iter().map(ImageInput::label).collect())
    }

    /// Rescale + normalise the cropped `part` (`cols` wide) into the planes of
    /// `out` at `(dst_y, dst_x)`; the rest of each plane is the zero padding.
    fn normalize_into(
        &self,
        part: &[u8],
        cols: usize,
        (dst_y, dst_x): (usize, usize),
        (ch, cw): (usize, usize),
        out: &mut [f32],
    ) {
        let lut = self.value_table();
        let pad = usize::from(self.config.pad_value);
        for (c, plane) in out.chunks_exact_mut(ch * cw).enumerate() {
            plane.fill(lut[c][pad]);
            for (r, src) in part.chunks_exact(cols * 3).enumerate() {
                let dst = &mut plane[(dst_y + r) * cw + dst_x..][..cols];
                for (d, px) in dst.iter_mut().zip(src.chunks_exact(3)) {
                    *d = lut[c][usize::from(px[c])];
                }
            }
        }
    }

    /// The f32 value of every u8 per channel, computed in NumPy's order.
    fn value_table(&self) -> [[f32; 256]; 3] {
        let cfg = &self.config;
        let mut t = [[0f32; 256]; 3];
        for (c, row) in t.iter_mut().enumerate() {
            let mean = cfg.image_mean[c] as f32;
            let std = cfg.image_std[c] as f32;
            for (v, slot) in row.iter_mut().enumerate() {
                let x = if cfg.do_rescale {
                    (v as f64 * cfg.rescale_factor) as f32
                } else {
                    v as f32
                };
                *slot = if cfg.do_normalize {
                    (x - mean) / std
                } else {
                    x
                };
            }
        }
        t
    }
}

/// For one axis of length `len` cropped to `crop`: (source start, destination start, count)
/// following HF's or torchvision's `center_crop` with padding.
fn crop_span(len: usize, crop: usize, rounding: CropRounding) -> (usize, usize, usize) {
    match (len >= crop, rounding) {
        (true, CropRounding::Hf) => ((len - crop) / 2, 0, crop),
        (true, CropRounding::Torchvision) => {
            let half = (len - crop) as f64 / 2.0;
            (half.round_ties_even() as usize, 0, crop)
        }
        (false, CropRounding::Hf) => (0, (crop - len).div_ceil(2), len),
        (false, CropRounding::Torchvision) => (0, (crop - len) / 2, len),
    }
}

/// Concatenates `[1, 3, H, W]` results into `[N, 3, H, W]`.
fn stack(items: Vec<PixelValues>, paths: Vec<PathBuf>) -> Result<PixelValues> {
    let Some(first) = items.first() else {
        return Ok(PixelValues {
            data: Vec::new(),
            shape: [0, 3, 0, 0],
        });
    };
    let shape = first.shape;
    if let Some((i, _)) = items.iter().enumerate().find(|(_, p)| p.shape != shape) {
        return Err(Error::InvalidArgument {
            reason: format!(
                "{}: preprocessed size {:?} differs from the batch's {:?} (enable center crop)",
                paths[i].display(),
                items[i].shape,
                shape
            ),
        });
    }
    let mut data = Vec::with_capacity(items.len() * first.data.len());
    for p in &items {
        data.extend_from_slice(&p.data);
    }
    Ok(PixelValues {
        data,
        shape: [items.len(), shape[1], shape[2], shape[3]],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_edge_sizes_match_python() {
        let cfg = PreprocessConfig::default();
        assert_eq!(cfg.resize_size(480, 640), (224, 298));
        assert_eq!(cfg.resize_size(3000, 4000), (224, 298));
        assert_eq!(cfg.resize_size(30, 2000), (224, 14933));
        assert_eq!(cfg.resize_size(1, 1), (224, 224));
        assert_eq!(cfg.resize_size(7, 3), (522, 224));
    }

    #[test]
    fn crop_offsets_follow_hf_and_torchvision() {
        let hf = CropRounding::Hf;
        assert_eq!(crop_span(298, 224, hf), (37, 0, 224));
        assert_eq!(crop_span(225, 224, hf), (0, 0, 224));
        assert_eq!(crop_span(5, 8, hf), (0, 2, 5));
        assert_eq!(crop_span(4, 8, hf), (0, 2, 4));
        // Python: int(round((len - crop) / 2.0)), half to even; padding left (crop - len) // 2.
        let tv = CropRounding::Torchvision;
        assert_eq!(crop_span(299, 224, tv), (38, 0, 224));
        assert_eq!(crop_span(297, 224, tv), (36, 0, 224));
        assert_eq!(crop_span(298, 224, tv), (37, 0, 224));
        assert_eq!(crop_span(5, 8, tv), (0, 1, 5));
    }

    #[test]
    fn longest_edge_sizes_round_half_to_even() {
        let cfg = PreprocessConfig {
            size: ResizeTarget::LongestEdge(224),
            ..PreprocessConfig::default()
        };
        assert_eq!(cfg.resize_size(480, 640), (168, 224));
        assert_eq!(cfg.resize_size(640, 480), (224, 168));
        // 3 * 224 / 8 = 84 exactly; 5 * 224 / 8 = 140; 1 * 224 / 448 = 0.5 -> 0 (to even).
        assert_eq!(cfg.resize_size(3, 8), (84, 224));
        assert_eq!(cfg.resize_size(1, 448), (0, 224));
    }
}
