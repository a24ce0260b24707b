//! `clip embed image|text`: L2-normalised (or `--raw`) embeddings as a float32 `[N, D]` .npy.

use crate::{model_dir, npy};
use clap::{Args, Subcommand};
use clip::{ClipModel, Features, ImageInput, PixelValues, Truncation};
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
    /// Threads (default: one per core; at most four per core).
    #[arg(long, default_value_t = 0, hide_default_value = true, value_parser = crate::args::threads)]
    threads: usize,
    /// Weight precision: f32, bf16 or int8 (default: the weight file's: int8 for a file
    /// written by `clip quantize`, bf16 for a bf16 file, else f32).
    #[arg(long, value_parser = model_dir::parse_precision)]
    precision: Option<clip::Precision>,
    /// Read every weight once at load and refuse NaN or Inf, naming the tensors.
    #[arg(long)]
    validate: bool,
    /// Inputs per forward pass (memory stays flat in the number of inputs).
    #[arg(long, default_value_t = clip::DEFAULT_BATCH_SIZE, value_parser = crate::args::positive)]
    batch: usize,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip embed image --model DIR cat.jpg dog.png --out images.npy\n  clip embed image --model DIR photos/*.jpg --batch 64 --out images.npy\n  clip preprocess cat.jpg --out cat.npy && clip embed image --model DIR cat.npy --out cat_emb.npy\n  clip embed image --model DIR pixels.npy --raw --out features.npy"
)]
struct ImageArgs {
    #[command(flatten)]
    common: Common,
    /// Image files (PNG, JPEG), or .npy files of pixel values ([3, H, W] as `clip
    /// preprocess` writes, or [N, 3, H, W]).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip embed text --model DIR --out texts.npy \"a photo of a cat\" \"a dog\"\n  printf '\"a cat\"\\n\"a dog\"\\n' | clip embed text --model DIR --jsonl --out texts.npy\n  clip embed text --model DIR --truncate --out long.npy \"a very long caption ...\"\n  clip embed text --model DIR --token-ids ids.npy --out texts.npy"
)]
struct TextArgs {
    #[command(flatten)]
    common: Common,
    /// Texts to embed.
    texts: Vec<String>,
    /// Read texts from stdin, one JSON string per line (instead of arguments).
    #[arg(long, conflicts_with = "texts")]
    jsonl: bool,
    /// A .npy of token ids [N, 77] (int32 or int64) instead of texts.
    #[arg(long, conflicts_with_all = ["texts", "jsonl", "truncate"])]
    token_ids: Option<PathBuf>,
    /// Cut texts longer than the context (77 tokens) and end them with EOT, as
    /// clip.tokenize(truncate=True); without it they are an error.
    #[arg(long)]
    truncate: bool,
}

pub fn run(args: &EmbedArgs) -> Result<(), String> {
    match &args.what {
        EmbedWhat::Image(a) => image(a),
        EmbedWhat::Text(a) => text(a),
    }
}

fn load(c: &Common) -> Result<(ClipModel, Option<PathBuf>), String> {
    model_dir::load_model_with(
        c.model.as_deref(),
        c.random_weights,
        c.threads,
        c.precision,
        Some(c.batch),
        c.validate,
    )
}

fn write(c: &Common, f: Features) -> Result<(), String> {
    let (rows, dim) = (f.rows(), f.dim());
    let data = if c.raw {
        f.into_vec()
    } else {
        f.normalize().into_vec()
    };
    npy::write_f32(&c.out, &[rows, dim], &data)
        .map_err(|err| format!("{}: cannot write: {err}", c.out.display()))
}

/// Pixel values from a `.npy` of float32 `[3, S, S]` (one image, as `clip preprocess` writes)
/// or `[N, 3, S, S]`.
fn npy_pixels(path: &Path, size: usize) -> Result<PixelValues, String> {
    match npy::read(path)? {
        npy::Array::F32 { shape, data } => {
            let n = match shape.as_slice() {
                [3, h, w] if (*h, *w) == (size, size) => 1,
                [n, 3, h, w] if (*h, *w) == (size, size) => *n,
                _ => {
                    return Err(format!(
                        "{}: pixel values of shape {shape:?}; the model needs [3, {size}, {size}] \
                         or [N, 3, {size}, {size}] (clip preprocess --model DIR writes them)",
                        path.display()
                    ))
                }
            };
            Ok(PixelValues {
                data,
                shape: [n, 3, size, size],
            })
        }
        npy::Array::I64 { .. } => Err(format!("{}: pixel values must be float32", path.display())),
    }
}

fn is_npy(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

fn image(a: &ImageArgs) -> Result<(), String> {
    for p in &a.files {
        crate::args::input_file(p)?;
    }
    let (model, _) = load(&a.common)?;
    let size = model.config().vision.image_size;
    let err = |e: clip::Error| e.to_string();
    let npys = a.files.iter().filter(|p| is_npy(p)).count();
    if npys > 0 && npys < a.files.len() {
        return Err(
            "give either image files or .npy files of pixel values, not both (run clip \
             preprocess on the images first, or embed each kind into its own --out)"
                .into(),
        );
    }
    let features = if npys > 0 {
        let mut out = Features::empty(model.config().projection_dim);
        for p in &a.files {
            let pv = npy_pixels(p, size)?;
            for chunk in pv.data.chunks(model.batch_size() * 3 * size * size) {
                let part = PixelValues {
                    data: chunk.to_vec(),
                    shape: [chunk.len() / (3 * size * size), 3, size, size],
                };
                out.extend(model.image_features(&part).map_err(err)?)
                    .map_err(err)?;
            }
        }
        out
    } else {
        let mut out = Features::empty(model.config().projection_dim);
        for chunk in a.files.chunks(model.batch_size()) {
            let inputs: Vec<ImageInput<'_>> = chunk.iter().map(|p| ImageInput::Path(p)).collect();
            let pv = model.preprocess(&inputs).map_err(err)?;
            out.extend(model.image_features(&pv).map_err(err)?)
                .map_err(err)?;
        }
        out
    };
    write(&a.common, features)
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
    let err = |e: clip::Error| e.to_string();
    let rows = match &a.token_ids {
        Some(p) => token_rows(p)?,
        None => {
            let truncation = match a.truncate {
                true => Truncation::Cut,
                false => Truncation::Refuse,
            };
            model.tokenize(&texts, truncation).map_err(|e| match e {
                clip::Error::Tokenizer(t) => text_source(a.jsonl, t),
                e => e.to_string(),
            })?
        }
    };
    let mut out = Features::empty(model.config().projection_dim);
    for chunk in rows.chunks(model.batch_size()) {
        let seqs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        out.extend(model.text_features(&seqs).map_err(err)?)
            .map_err(err)?;
    }
    write(&a.common, out)
}
