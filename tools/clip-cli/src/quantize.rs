//! `clip quantize MODEL --out DIR`: writes the model folder with its linear weights stored as
//! int8 (per output channel, with f32 scales), which then loads in int8 without quantising
//! again (`clip::quantize_model`). The other files of the folder are copied beside it.
//!
//! Not here: the quantisation and file format (`clip` crate, `quantize.rs`).

use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `clip quantize`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  clip quantize models/clip-vit-base-patch32 --out models/clip-vit-base-patch32-int8\n  clip classify cat.jpg --labels \"cat,dog\" --model models/clip-vit-base-patch32-int8"
)]
pub struct QuantizeArgs {
    /// Model folder (f32, f16 or bf16 weights), or a repository name in the Hugging Face cache.
    pub model: PathBuf,
    /// Output folder (created if missing; its model.safetensors is replaced).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: &QuantizeArgs) -> Result<(), String> {
    let dir = crate::model_dir::find(Some(&a.model))?
        .ok_or_else(|| format!("{}: no such model folder", a.model.display()))?;
    let t0 = Instant::now();
    let r = clip::quantize_model(&dir, &a.out).map_err(|e| e.to_string())?;
    println!(
        "quantised {} weights to int8 ({} other tensors copied): {:.1} MB -> {:.1} MB in {:.1} s; wrote {}",
        r.quantized,
        r.copied,
        r.bytes_in as f64 / 1e6,
        r.bytes_out as f64 / 1e6,
        t0.elapsed().as_secs_f64(),
        r.path.display()
    );
    Ok(())
}
