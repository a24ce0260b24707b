//! Finding and loading the model: `--model DIR`, then `CLIP_MODEL`, then a Hugging Face cache
//! snapshot of openai/clip-vit-base-patch32 (honouring `HF_HUB_CACHE` and `HF_HOME`); or, with
//! `--random-weights`, a full-size ViT-B/32 with seeded random weights and no files.
//!
//! This module does not parse images or texts; commands do that with the model it returns.

use clip::{ClipConfig, ClipModel, LoadOptions, Precision};
use std::path::{Path, PathBuf};

const REPO: &str = clip::hub::DEFAULT_REPO;

/// The message printed when no model is found.
pub fn not_found() -> String {
    format!(
        "no CLIP model found: pass --model DIR, set CLIP_MODEL, or put a snapshot of {REPO} in the \
         Hugging Face cache. A folder needs config.json and model.safetensors (optionally \
         preprocessor_config.json, vocab.json, merges.txt), downloadable from \
         https://huggingface.co/{REPO}; or try the engine with --random-weights"
    )
}

/// Where to get real weights, in one sentence.
pub fn not_found_short() -> String {
    format!("for real results put config.json and model.safetensors from https://huggingface.co/{REPO} in a folder and pass --model DIR")
}

/// The model folder to use, or `None` when there is none: `--model` (a folder, or a
/// repository name in the Hugging Face cache), then `CLIP_MODEL`, then the cache's
/// openai/clip-vit-base-patch32 (see `clip::hub`).
pub fn find(explicit: Option<&Path>) -> Result<Option<PathBuf>, String> {
    let spec = explicit.map(|p| p.to_string_lossy().into_owned());
    clip::hub::find_model(spec.as_deref()).map_err(|e| match (explicit, &e) {
        (Some(p), clip::Error::MissingFile { what, .. }) if *what == "model folder" => {
            format!("--model {}: not a folder", p.display())
        }
        _ => e.to_string(),
    })
}

/// The seed of `--random-weights` (fixed, so runs are repeatable).
pub const RANDOM_SEED: u64 = 0;

/// The stderr line every command prints when it ran on random weights (after its output, so
/// that an error stays one line).
pub const RANDOM_NOTE: &str = "note: random weights: outputs are meaningless";

/// Whether this run loaded random weights (for [`RANDOM_NOTE`]).
pub static RANDOM_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The model options every model-using command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model folder (default: CLIP_MODEL, then the Hugging Face cache).
    #[arg(long, conflicts_with = "random_weights")]
    pub model: Option<PathBuf>,
    /// Use a full-size ViT-B/32 with seeded random weights (no files; outputs are meaningless).
    #[arg(long)]
    pub random_weights: bool,
    /// Threads (default: one per core; at most four per core).
    #[arg(long, default_value_t = 0, hide_default_value = true, value_parser = crate::args::threads)]
    pub threads: usize,
    /// Weight precision: f32, bf16 or int8 (default: the weight file's: int8 for a file
    /// written by `clip quantize`, bf16 for a bf16 file, else f32).
    #[arg(long, value_parser = parse_precision)]
    pub precision: Option<Precision>,
    /// Read every weight once at load and refuse NaN or Inf, naming the tensors.
    #[arg(long)]
    pub validate: bool,
}

/// Parses `--precision`.
pub fn parse_precision(s: &str) -> Result<Precision, String> {
    match s.to_ascii_lowercase().as_str() {
        "f32" | "fp32" => Ok(Precision::F32),
        "bf16" => Ok(Precision::Bf16),
        "int8" | "i8" => Ok(Precision::Int8),
        _ => Err(format!("expected f32, bf16 or int8, got {s:?}")),
    }
}

/// The name `--precision` takes for `p`.
pub fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "f32",
        Precision::Bf16 => "bf16",
        Precision::Int8 => "int8",
    }
}

/// Loads the model: random weights when `random` (noted in [`RANDOM_USED`]), else the folder
/// found by [`find`]. `batch` is the inputs per forward pass of
/// the library's list-taking calls (`None`: its default).
pub fn load_model(
    model: Option<&Path>,
    random: bool,
    threads: usize,
    precision: Option<Precision>,
    batch: Option<usize>,
) -> Result<(ClipModel, Option<PathBuf>), String> {
    load_model_with(model, random, threads, precision, batch, false)
}

/// [`load_model`], with `validate` reading every weight for NaN or Inf at load.
pub fn load_model_with(
    model: Option<&Path>,
    random: bool,
    threads: usize,
    precision: Option<Precision>,
    batch: Option<usize>,
    validate: bool,
) -> Result<(ClipModel, Option<PathBuf>), String> {
    let mut opts = LoadOptions::new().threads(threads).validate(validate);
    if let Some(p) = precision {
        opts = opts.precision(p);
    }
    if let Some(b) = batch {
        opts = opts.batch_size(b);
    }
    if random {
        RANDOM_USED.store(true, std::sync::atomic::Ordering::Relaxed);
        let m = ClipModel::random(&ClipConfig::vit_base_patch32(), RANDOM_SEED, &opts)
            .map_err(|e| e.to_string())?;
        return Ok((m, None));
    }
    let dir = find(model)?.ok_or_else(not_found)?;
    let m = ClipModel::load_with(&dir, &opts).map_err(|e| load_error(&dir, e))?;
    if debug_log() && !m.unused_tensors().is_empty() {
        eprintln!(
            "debug: {}: {} tensor(s) not used by the model: {}",
            dir.join("model.safetensors").display(),
            m.unused_tensors().len(),
            m.unused_tensors().join(", ")
        );
    }
    Ok((m, Some(dir)))
}

/// `CLIP_LOG=debug`: extra lines on stderr (tensors of the file the model does not use).
fn debug_log() -> bool {
    std::env::var("CLIP_LOG").is_ok_and(|v| v.eq_ignore_ascii_case("debug"))
}

/// One line naming the file and the problem: errors about one tensor name the weights file.
fn load_error(dir: &Path, e: clip::Error) -> String {
    use clip::Error as E;
    match e {
        E::MissingTensor { .. } | E::WrongShape { .. } | E::WrongDType { .. } | E::Tensor(_) => {
            format!("{}: {e}", dir.join("model.safetensors").display())
        }
        e => e.to_string(),
    }
}

/// [`load_model`] from the shared options.
pub fn load(args: &ModelArgs, batch: Option<usize>) -> Result<Loaded, String> {
    let (model, dir) = load_model_with(
        args.model.as_deref(),
        args.random_weights,
        args.threads,
        args.precision,
        batch,
        args.validate,
    )?;
    Ok(Loaded { model, dir })
}

/// A loaded model and where it came from.
pub struct Loaded {
    pub model: ClipModel,
    /// The model folder; `None` for random weights.
    pub dir: Option<PathBuf>,
}

impl Loaded {
    pub fn random(&self) -> bool {
        self.dir.is_none()
    }

    /// A name that identifies the weights: the canonical folder, or `random-weights:SEED`.
    pub fn identity(&self) -> String {
        match &self.dir {
            Some(d) => std::fs::canonicalize(d)
                .unwrap_or_else(|_| d.clone())
                .display()
                .to_string(),
            None => format!("random-weights:vit-base-patch32:seed{RANDOM_SEED}"),
        }
    }
}
