//! CLIP preprocessing as transformers 5's `CLIPImageProcessor` (PIL backend):
//! resize the shortest edge, center crop (zero padding if smaller), rescale by
//! 1/255 in f64, normalise in f32, lay out `[3, H, W]`; batches `[N, 3, H, W]`
//! in parallel with rayon, within the process's decoding memory budget (`budget.rs`).
//! Settings come from `preprocessor_config.json`.
//!
//! Arithmetic order matches NumPy's: `x = f32(f64(u8) * rescale_factor)`, then
//! `(x - f32(mean)) / f32(std)` in f32, so results are bit-identical.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::decode::decode_reserved;
use super::resize::{resize_bicubic, resize_bicubic_window, Window};
use super::{DecodeOptions, RgbImage};
use crate::{Error, Result};

/// OpenAI CLIP's normalisation mean (RGB).
pub const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// OpenAI CLIP's normalisation std (RGB).
pub const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// How the resize step picks its output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeTarget {
    /// Shortest edge to `n`, long edge `int(n * long / short)` (HF, truncated).
    ShortestEdge(usize),
    /// Exact `height x width`.
    Exact { height: usize, width: usize },
}

/// The processor settings (a subset of HF's `preprocessor_config.json`).
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessConfig {
    pub do_resize: bool,
    pub size: ResizeTarget,
    pub do_center_crop: bool,
    pub crop_height: usize,
    pub crop_width: usize,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
}

impl Default for PreprocessConfig {
    /// openai/clip-vit-base-patch32: shortest edge 224, crop 224x224.
    fn default() -> Self {
        PreprocessConfig {
            do_resize: true,
            size: ResizeTarget::ShortestEdge(224),
            do_center_crop: true,
            crop_height: 224,
            crop_width: 224,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
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
            ResizeTarget::ShortestEdge(n) => n == 0,
            ResizeTarget::Exact { height, width } => height == 0 || width == 0,
        };
        if self.do_resize && zero_size {
            return bad("resize size must be positive");
        }
        if self.do_center_crop && (self.crop_height == 0 || self.crop_width == 0) {
            return bad("crop size must be positive");
        }
        if self.do_normalize && self.image_std.contains(&0.0) {
            return bad("image_std must be non-zero");
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
        let data = resize_bicubic(&img.data, img.width, img.height, w, h);
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
        // HF: top = (H - ch) // 2 when the image is large enough; otherwise the
        // image sits at ceil((ch - H) / 2) inside a zero canvas.
        let (src_y, dst_y, rows) = crop_span(rh, ch);
        let (src_x, dst_x, cols) = crop_span(rw, cw);
        let win = Window {
            x0: src_x,
            y0: src_y,
            width: cols,
            height: rows,
        };
        let part = if self.config.do_resize {
            resize_bicubic_window(&img.data, img.width, img.height, rw, rh, win)
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
    pub fn preprocess_file(&self, path: &Path) -> Result<PixelValues> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.preprocess_bytes(&bytes, path)
    }

    /// Decodes and preprocesses encoded bytes; `name` labels errors. The decoded image is
    /// preprocessed within the decode's reservation of the memory budget (`budget.rs`).
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
            ImageInput::Path(p) => self.preprocess_file(p),
            ImageInput::Bytes { bytes, name } => self.preprocess_bytes(bytes, Path::new(name)),
            ImageInput::Rgb(img) => self.preprocess_rgb(img),
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
        for (c, plane) in out.chunks_exact_mut(ch * cw).enumerate() {
            plane.fill(lut[c][0]);
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

/// For one axis of length `len` cropped to `crop`: (source start, destination
/// start, count) following HF's `center_crop` with padding.
fn crop_span(len: usize, crop: usize) -> (usize, usize, usize) {
    if len >= crop {
        ((len - crop) / 2, 0, crop)
    } else {
        (0, (crop - len).div_ceil(2), len)
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
    fn crop_offsets_follow_hf() {
        assert_eq!(crop_span(298, 224), (37, 0, 224));
        assert_eq!(crop_span(225, 224), (0, 0, 224));
        assert_eq!(crop_span(5, 8), (0, 2, 5));
        assert_eq!(crop_span(4, 8), (0, 2, 4));
    }
}
