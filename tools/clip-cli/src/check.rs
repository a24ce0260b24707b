//! `clip check MODEL [--reference REF.npz]`: what the engine understood of a checkpoint (its
//! format, sizes, activation, pooling, preprocessing, context, tokenizer), a fixed probe run
//! through both towers with a short fingerprint of the outputs, and, against a reference
//! written by `tools/reference/make_open_clip_reference.py` (or any `.npz` with the same
//! names), every layer's output compared, naming the first layer and part whose difference
//! exceeds the bound.
//!
//! The probe (the same formulas as the reference script's `probe_pixels` / `probe_ids`):
//! pixels `((31c + 7y + 13x) mod 255) / 127.5 - 1`, ids `[V-2, 5, 17, 42, V-1]` padded with
//! zeros to the context (V the vocabulary size), the text run over the whole context.

use crate::{model_dir, npy};
use clap::Args;
use clip::{ClipModel, ForwardOptions, PixelValues, TextPool, VisionPool};
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip check models/clip-vit-base-patch32\n  clip check laion/CLIP-ViT-H-14-laion2B-s32B-b79K\n  clip check DIR --reference DIR/probe.npz\n  python tools/reference/make_open_clip_reference.py --model ViT-L-14 --layers 2 --out l14 && clip check l14 --reference l14/probe.npz"
)]
pub struct CheckArgs {
    /// Model folder, or a repository name in the Hugging Face cache.
    model: PathBuf,
    /// An .npz of the reference's outputs for the probe (`vision.hidden_states.{i}`,
    /// `vision.attention.{i}`, `image_features`, the same for `text`, ...).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// The bound on max |difference| of a layer's output, relative to its largest magnitude
    /// (at least 1).
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f64,
    /// Threads (default: one per core; at most four per core).
    #[arg(long, default_value_t = 0, hide_default_value = true, value_parser = crate::args::threads)]
    threads: usize,
}

pub fn run(a: &CheckArgs) -> Result<(), String> {
    let reference = match &a.reference {
        Some(p) => Some(read_npz(p)?),
        None => None,
    };
    let (model, dir) = model_dir::load_model(Some(&a.model), false, a.threads, None, None)?;
    describe(&model, dir.as_deref());
    let s = model.config().vision.image_size;
    let pixels = probe_pixels(s);
    let ids = probe_ids(&model);
    let hidden = ForwardOptions::new().with_hidden_states();
    let err = |e: clip::Error| e.to_string();
    let vis = model.vision_forward(&pixels, hidden).map_err(err)?;
    let txt = model
        .text_forward(&[&ids], hidden.with_full_context())
        .map_err(err)?;
    let image = model.embed_pixels(&pixels).map_err(err)?;
    let text = model.embed_token_ids(&[&ids]).map_err(err)?;
    println!("probe:");
    println!("  image embedding {}", head(image.row(0)));
    println!("  text embedding  {}", head(text.row(0)));
    println!(
        "  fingerprint     {:016x}",
        fingerprint(image.row(0), text.row(0))
    );
    let Some(r) = reference else {
        return Ok(());
    };
    let mut outputs: Vec<(String, String, &[f32])> = Vec::new();
    for (tower, out_h, out_a, feats) in [
        (
            "vision",
            &vis.hidden_states,
            &vis.attention_states,
            &vis.features,
        ),
        (
            "text",
            &txt.hidden_states,
            &txt.attention_states,
            &txt.features,
        ),
    ] {
        outputs.push((
            format!("{tower}.hidden_states.0"),
            format!("{tower} embeddings (before the first layer)"),
            &out_h[0],
        ));
        for i in 0..out_a.len() {
            outputs.push((
                format!("{tower}.attention.{i}"),
                format!(
                    "{tower} layer {} attention (ln_1, q/k/v, softmax, out_proj, residual)",
                    i + 1
                ),
                &out_a[i],
            ));
            outputs.push((
                format!("{tower}.hidden_states.{}", i + 1),
                format!(
                    "{tower} layer {} MLP (ln_2, fc1, activation, fc2, residual)",
                    i + 1
                ),
                &out_h[i + 1],
            ));
        }
        let name = if tower == "vision" {
            "image_features"
        } else {
            "text_features"
        };
        outputs.push((
            name.to_string(),
            format!("{tower} pooling, final layer norm and projection"),
            feats,
        ));
    }
    compare(&outputs, &r, a.tolerance)
}

/// Prints the configuration as the engine understood it.
fn describe(model: &ClipModel, dir: Option<&std::path::Path>) {
    let c = model.config();
    let (v, t) = (&c.vision, &c.text);
    let act = |a: clip::Activation| match a {
        clip::Activation::QuickGelu => "QuickGELU",
        clip::Activation::Gelu => "GELU (erf)",
        clip::Activation::None => "none",
    };
    let file = model
        .weights_path()
        .map_or("-".into(), |p| p.display().to_string());
    let format = match (
        dir.map(|d| d.join("open_clip_config.json").is_file()),
        model.format(),
    ) {
        (Some(true), _) => "open_clip (open_clip_config.json, OpenAI key names)".to_string(),
        (_, Some(f)) => format!("{f} key names"),
        (_, None) => "random weights".into(),
    };
    println!("model: {file}");
    println!("  format: {format}");
    println!(
        "  weights: {} ({} MB), kept in {}",
        model.weights_dtype().map_or("-".into(), |d| d.to_string()),
        model.weights_size() / 1_000_000,
        crate::model_dir::precision_name(model.precision())
    );
    let vpool = match (v.pool, v.final_ln_after_pool) {
        (VisionPool::ClassToken, _) => "class token",
        (VisionPool::MeanOfPatches, false) => "mean of patch tokens (final LN before the mean)",
        (VisionPool::MeanOfPatches, true) => "mean of patch tokens (final LN after the mean)",
    };
    println!(
        "  vision: width {}, {} layers, {} heads of {}, MLP {}, {}px image in {}px patches, {}, \
         layer scale {}, pre-LN {}, pooling: {vpool}",
        v.hidden_size,
        v.num_hidden_layers,
        v.num_attention_heads,
        v.head_dim(),
        v.intermediate_size,
        v.image_size,
        v.patch_size,
        act(v.hidden_act),
        yes(v.layer_scale),
        yes(v.ln_pre),
    );
    let tpool = match t.pool {
        TextPool::Argmax => "the largest id (end of text)".to_string(),
        TextPool::FirstOf(id) => format!("the first id {id}"),
        TextPool::First => "the first position".into(),
        TextPool::Last => "the last position".into(),
    };
    println!(
        "  text: width {}, {} layers, {} heads of {}, MLP {}, context {}, vocabulary {}, {}, \
         layer scale {}, causal, pooling: {tpool}",
        t.hidden_size,
        t.num_hidden_layers,
        t.num_attention_heads,
        t.head_dim(),
        t.intermediate_size,
        t.max_position_embeddings,
        t.vocab_size,
        act(t.hidden_act),
        yes(t.layer_scale),
    );
    println!(
        "  embedding: {} dims, logit scale {:.4} (x{:.2})",
        c.projection_dim,
        model.logit_scale(),
        model.logit_scale().exp()
    );
    let p = &model.preprocessor().config;
    println!(
        "  preprocessing: resize {:?} ({:?}), crop {}x{} ({:?} rounding, pad value {}), mean {:?}, std {:?}",
        p.size, p.resample, p.crop_width, p.crop_height, p.crop_rounding, p.pad_value, p.image_mean, p.image_std
    );
    let vocab =
        dir.is_some_and(|d| d.join("vocab.json").is_file() && d.join("merges.txt").is_file());
    println!(
        "  tokenizer: {}, context {}",
        if vocab {
            "the folder's vocab.json + merges.txt"
        } else {
            "CLIP's BPE vocabulary (embedded)"
        },
        t.max_position_embeddings
    );
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The probe image, `[1, 3, S, S]`.
fn probe_pixels(s: usize) -> PixelValues {
    let mut data = Vec::with_capacity(3 * s * s);
    for c in 0..3 {
        for y in 0..s {
            for x in 0..s {
                data.push(((31 * c + 7 * y + 13 * x) % 255) as f32 / 127.5 - 1.0);
            }
        }
    }
    PixelValues {
        data,
        shape: [1, 3, s, s],
    }
}

/// The probe ids, padded to the context.
fn probe_ids(model: &ClipModel) -> Vec<u32> {
    let t = &model.config().text;
    let v = t.vocab_size as u32;
    let mut ids = vec![v - 2, 5 % v, 17 % v, 42 % v, v - 1];
    ids.resize(t.max_position_embeddings.max(ids.len()), 0);
    ids
}

/// The first values of an embedding.
fn head(v: &[f32]) -> String {
    let shown: Vec<String> = v.iter().take(6).map(|x| format!("{x:+.5}")).collect();
    format!("[{}, ...] ({} dims)", shown.join(", "), v.len())
}

/// FNV-1a of both embeddings rounded to 1e-4: equal for the same model whatever the kernel
/// set or thread count (their differences are far smaller), different for another model.
fn fingerprint(a: &[f32], b: &[f32]) -> u64 {
    a.iter().chain(b).fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        let q = (x * 1e4).round() as i64;
        q.to_le_bytes().iter().fold(h, |h, &byte| {
            (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    })
}

/// A reference's float arrays by name: shape and values.
type Arrays = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Every `.npy` of an `.npz`, by name (without `.npy`).
fn read_npz(path: &std::path::Path) -> Result<Arrays, String> {
    let bytes = npy::read_file(path)?;
    let bad = |e: String| format!("{}: not a usable .npz: {e}", path.display());
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let mut out = HashMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = f
            .name()
            .map_err(|e| bad(e.to_string()))?
            .trim_end_matches(".npy")
            .to_string();
        // An entry larger than the archive's bound is refused like a large .npy.
        let mut data = Vec::new();
        (&mut f)
            .take(4 << 30)
            .read_to_end(&mut data)
            .map_err(|e| bad(e.to_string()))?;
        match npy::parse(&data, &format!("{}:{name}", path.display()))? {
            npy::Array::F32 { shape, data } => {
                out.insert(name, (shape, data));
            }
            npy::Array::I64 { .. } => {} // token ids: the probe's own are used
        }
    }
    Ok(out)
}

/// Compares each output with the reference's array of the same name, in the order the model
/// computes them; reports every line, then the first beyond the bound.
fn compare(outputs: &[(String, String, &[f32])], r: &Arrays, tol: f64) -> Result<(), String> {
    println!("against the reference (max |diff| / max(1, max |ref|), bound {tol:e}):");
    let mut first = None;
    let mut compared = 0;
    for (key, what, got) in outputs {
        let Some((_, want)) = r.get(key) else {
            println!("  {key:<28} not in the reference");
            continue;
        };
        if want.len() != got.len() {
            return Err(format!(
                "{key}: the reference has {} values, the model {} (another model, or another \
                 probe?)",
                want.len(),
                got.len()
            ));
        }
        let scale = want.iter().fold(1.0f64, |m, &v| m.max(f64::from(v.abs())));
        let diff = got
            .iter()
            .zip(want)
            .map(|(a, b)| f64::from((a - b).abs()))
            .fold(0.0, f64::max);
        let rel = diff / scale;
        let ok = rel <= tol;
        compared += 1;
        println!(
            "  {key:<28} {rel:.3e}  {}",
            if ok { "OK" } else { "NOT OK" }
        );
        if !ok && first.is_none() {
            first = Some((key.clone(), what.clone(), rel));
        }
    }
    match first {
        Some((key, what, rel)) => Err(format!(
            "{key} differs from the reference by {rel:.3e} (bound {tol:e}): the first difference \
             is in the {what}"
        )),
        None if compared == 0 => Err("the reference holds none of the model's outputs".into()),
        None => {
            println!("all {compared} outputs within the bound");
            Ok(())
        }
    }
}
