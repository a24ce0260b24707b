//! `clip preprocess IMAGE --out FILE.npy [--model DIR]`: decode an image, run
//! CLIP's preprocessing (bit-exact with PIL + transformers' CLIPImageProcessor on
//! PNG) and write the float32 `[3, H, W]` tensor as a NumPy `.npy` file.
//!
//! The file is written to a temporary name beside the target, then renamed, so
//! a reader never sees a partial file. Nothing here panics on bad input.

use std::io::Write;
use std::path::{Path, PathBuf};

use clip::image::{AlphaMode, Preprocessor};

/// Arguments of `clip preprocess`.
#[derive(clap::Args, Debug)]
pub struct PreprocessArgs {
    /// The image (PNG or JPEG).
    pub image: PathBuf,
    /// Where to write the float32 [3, H, W] array (.npy).
    #[arg(long)]
    pub out: PathBuf,
    /// Model folder: sizes, mean and std come from its preprocessor_config.json.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Drop alpha instead of compositing over white (OpenAI / transformers 4).
    #[arg(long)]
    pub drop_alpha: bool,
    /// Apply the EXIF orientation tag (the reference pipeline ignores it).
    #[arg(long)]
    pub exif_orientation: bool,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = clip::image::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// Runs the command; errors are one-line messages for the caller to print.
pub fn run(args: &PreprocessArgs) -> Result<(), String> {
    let mut pre = match &args.model {
        Some(dir) => Preprocessor::from_model_dir(dir).map_err(|e| e.to_string())?,
        None => Preprocessor::default(),
    };
    pre.decode.max_pixels = args.max_pixels;
    pre.decode.apply_exif_orientation = args.exif_orientation;
    if args.drop_alpha {
        pre.decode.alpha = AlphaMode::Drop;
    }
    let pixels = pre
        .preprocess_file(&args.image)
        .map_err(|e| e.to_string())?;
    let [_, c, h, w] = pixels.shape;
    write_npy_f32(&args.out, &[c, h, w], &pixels.data)
        .map_err(|e| format!("{}: cannot write: {e}", args.out.display()))
}

/// The `.npy` v1.0 header for a little-endian float32 C-order array, padded so
/// the data starts at a multiple of 64 bytes.
fn npy_header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_str = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_str}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes `data` with `shape` to `path` via a temporary file and a rename.
fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let result = (|| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(&npy_header(shape))?;
        for v in data {
            f.write_all(&v.to_le_bytes())?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_parsable() {
        let h = npy_header(&[3, 224, 224]);
        assert_eq!(h.len() % 64, 0);
        let text = String::from_utf8_lossy(&h[10..]);
        assert!(text.contains("'shape': (3, 224, 224)"));
        assert!(text.ends_with('\n'));
    }
}
