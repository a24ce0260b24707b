//! `clip embed image|text`: L2-normalised (or `--raw`) embeddings as a float32 `[N, D]` .npy.

use crate::{model_dir, npy};
use clap::{Args, Subcommand};
use clip::image::Preprocessor;
use clip::{ClipModel, Embeddings};
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip embed image --model DIR cat.jpg dog.png --out images.npy\n  clip embed image --model DIR pixels.npy --out images.npy\n  clip embed text --model DIR --out texts.npy \"a photo of a cat\" \"a dog\"\n  printf '\"a cat\"\\n' | clip embed text --model DIR --jsonl --out texts.npy\n  clip embed text --model DIR --token-ids ids.npy --out texts.npy\n  clip embed text --random-weights --out texts.npy \"a cat\""
)]
pub struct EmbedArgs {
    #[command(subcommand)]
    what: EmbedWhat,
}

#[derive(Subcommand)]
enum EmbedWhat {
    /// Embed image files, or one .npy of preprocessed pixels [N, 3, H, W].
    Image(ImageArgs),
    /// Embed texts (arguments, or stdin with --jsonl) or token ids (--token-ids).
    Text(TextArgs),
}

#[derive(Args)]
struct Common {
    /// Model folder (default: CLIP_MODEL, then the Hugging Face cache).
    #[arg(long, conflicts_with = "random_weights")]
    model: Option<PathBuf>,
    /// Use a full-size ViT-B/32 with seeded random weights (outputs are meaningless).
    #[arg(long)]
    random_weights: bool,
    /// Output .npy file (float32 [N, D]).
    #[arg(long)]
    out: PathBuf,
    /// Unnormalised projections (HF's get_image_features / get_text_features).
    #[arg(long)]
    raw: bool,
    /// Threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Weight precision, f32 or bf16 (default: bf16 for a bf16 weight file, else f32).
    #[arg(long, value_parser = model_dir::parse_precision)]
    precision: Option<clip::Precision>,
}

#[derive(Args)]
struct ImageArgs {
    #[command(flatten)]
    common: Common,
    /// Image files (PNG, JPEG), or a single .npy of pixel values.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Args)]
struct TextArgs {
    #[command(flatten)]
    common: Common,
    /// Texts to embed.
    texts: Vec<String>,
    /// Read texts from stdin, one JSON string per line.
    #[arg(long)]
    jsonl: bool,
    /// A .npy of token ids [N, 77] (int32 or int64) instead of texts.
    #[arg(long, conflicts_with_all = ["texts", "jsonl"])]
    token_ids: Option<PathBuf>,
}

pub fn run(args: &EmbedArgs) -> Result<(), String> {
    match &args.what {
        EmbedWhat::Image(a) => image(a),
        EmbedWhat::Text(a) => text(a),
    }
}

fn load(c: &Common) -> Result<(ClipModel, Option<PathBuf>), String> {
    model_dir::load_model(c.model.as_deref(), c.random_weights, c.threads, c.precision)
}

fn write(c: &Common, e: Embeddings) -> Result<(), String> {
    let e = if c.raw { e } else { e.normalized() };
    npy::write_f32(&c.out, &[e.rows, e.dim], &e.data)
        .map_err(|err| format!("{}: cannot write: {err}", c.out.display()))
}

fn image(a: &ImageArgs) -> Result<(), String> {
    let (model, dir) = load(&a.common)?;
    let size = model.config.vision.image_size;
    let (pixels, n) = if a.files.len() == 1 && a.files[0].extension().is_some_and(|e| e == "npy") {
        match npy::read(&a.files[0])? {
            npy::Array::F32 { shape, data }
                if shape.len() == 4 && shape[1] == 3 && shape[2] == size && shape[3] == size =>
            {
                (data, shape[0])
            }
            npy::Array::F32 { shape, .. } => {
                return Err(format!(
                    "{}: pixel values of shape {shape:?}; the model needs [N, 3, {size}, {size}]",
                    a.files[0].display()
                ))
            }
            npy::Array::I64 { .. } => {
                return Err(format!(
                    "{}: pixel values must be float32",
                    a.files[0].display()
                ))
            }
        }
    } else {
        let pre = match &dir {
            Some(d) => Preprocessor::from_model_dir(d).map_err(|e| e.to_string())?,
            None => Preprocessor::default(),
        };
        let pv = model
            .threads()
            .install(|| pre.preprocess_batch(&a.files))
            .map_err(|e| e.to_string())?;
        if pv.shape[2] != size || pv.shape[3] != size {
            return Err(format!(
                "preprocessing gives {}x{} images; the model needs {size}x{size}",
                pv.shape[2], pv.shape[3]
            ));
        }
        (pv.data, pv.shape[0])
    };
    let e = model
        .image_features(&pixels, n)
        .map_err(|e| e.to_string())?;
    write(&a.common, e)
}

fn read_jsonl() -> Result<Vec<String>, String> {
    let stdin = std::io::stdin();
    let mut out = Vec::new();
    for (i, line) in stdin.lock().split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let line = std::str::from_utf8(&line)
            .map_err(|e| format!("stdin line {}: invalid UTF-8: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("stdin line {}: not JSON: {e}", i + 1))?;
        let s = v
            .as_str()
            .ok_or_else(|| format!("stdin line {}: not a JSON string", i + 1))?;
        out.push(s.to_string());
    }
    Ok(out)
}

fn token_rows(path: &Path) -> Result<Vec<Vec<u32>>, String> {
    match npy::read(path)? {
        npy::Array::I64 { shape, data } if shape.len() == 2 => data
            .chunks(shape[1].max(1))
            .enumerate()
            .map(|(r, row)| {
                row.iter()
                    .map(|&v| {
                        u32::try_from(v)
                            .map_err(|_| format!("{}: row {r} has id {v}", path.display()))
                    })
                    .collect()
            })
            .collect(),
        npy::Array::I64 { shape, .. } => Err(format!(
            "{}: token ids of shape {shape:?}; expected [N, 77]",
            path.display()
        )),
        npy::Array::F32 { .. } => Err(format!(
            "{}: token ids must be int32 or int64",
            path.display()
        )),
    }
}

/// A tokenizer error naming where the texts came from (their index counts texts, not lines).
fn text_source(stdin: bool, e: clip_tokenizer::Error) -> String {
    let from = if stdin { "stdin" } else { "arguments" };
    format!("texts from {from}: {e}")
}

fn text(a: &TextArgs) -> Result<(), String> {
    let texts = if a.jsonl {
        read_jsonl()?
    } else {
        a.texts.clone()
    };
    if a.token_ids.is_none() && texts.is_empty() {
        return Err(
            "no texts given (pass them as arguments, or --jsonl on stdin, or --token-ids)".into(),
        );
    }
    let (model, _) = load(&a.common)?;
    let e = match &a.token_ids {
        Some(p) => {
            let rows = token_rows(p)?;
            let seqs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
            model.text_features(&seqs)
        }
        None => {
            let ctx = model.config.text.max_position_embeddings;
            let rows = model
                .tokenizer()
                .tokenize(&texts, ctx, false)
                .map_err(|e| text_source(a.jsonl, e))?;
            let seqs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
            model.text_features(&seqs)
        }
    }
    .map_err(|e| e.to_string())?;
    write(&a.common, e)
}
