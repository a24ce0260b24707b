//! `clip preprocess IMAGE --out FILE.npy [--model DIR]`: decode an image, run
//! CLIP's preprocessing (bit-exact with PIL + transformers' CLIPImageProcessor on
//! PNG) and write the float32 `[3, H, W]` tensor as a NumPy `.npy` file.
//!
//! The file is written to a temporary name beside the target, then renamed, so
//! a reader never sees a partial file. Nothing here panics on bad input.

use std::path::PathBuf;

use clip::image::{AlphaMode, Preprocessor};

/// Arguments of `clip preprocess`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  clip preprocess cat.jpg --out cat.npy\n  clip preprocess cat.png --model DIR --drop-alpha --out cat.npy"
)]
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
    /// Threads (default: one per core; at most four per core).
    #[arg(long, default_value_t = 0, hide_default_value = true, value_parser = crate::args::threads)]
    pub threads: usize,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = clip::image::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// Runs the command; errors are one-line messages for the caller to print.
pub fn run(args: &PreprocessArgs) -> Result<(), String> {
    crate::args::input_file(&args.image)?;
    crate::global_threads(args.threads)?;
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
    crate::npy::write_f32(&args.out, &[c, h, w], &pixels.data)
        .map_err(|e| format!("{}: cannot write: {e}", args.out.display()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn header_is_aligned_and_parsable() {
        let h = crate::npy::header(&[3, 224, 224]);
        assert_eq!(h.len() % 64, 0);
        let text = String::from_utf8_lossy(&h[10..]);
        assert!(text.contains("'shape': (3, 224, 224)"));
        assert!(text.ends_with('\n'));
    }
}
