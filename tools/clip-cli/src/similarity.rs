//! `clip similarity --images A.jpg B.png --texts "a cat" "a dog"`: the N x M matrix of
//! cosine similarities (or, with `--logits`, CLIP's logits = exp(logit_scale) x cosine)
//! between images (rows) and texts (columns), as a table or one JSON object.

use crate::model_dir::{self, ModelArgs};
use clap::Args;
use clip::Truncation;
use std::path::PathBuf;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip similarity --images cat.jpg dog.png --texts \"a cat\" \"a dog\"\n  clip similarity --images cat.jpg --texts \"a cat\" \"a dog\" --logits --json\n  clip similarity --random-weights --images cat.jpg --texts \"a cat\""
)]
pub struct SimilarityArgs {
    /// Image files (rows of the matrix).
    #[arg(long, num_args = 1.., required = true)]
    images: Vec<PathBuf>,
    /// Texts (columns of the matrix).
    #[arg(long, num_args = 1.., required = true)]
    texts: Vec<String>,
    /// Print logits (exp(logit_scale) x cosine) instead of cosines.
    #[arg(long)]
    logits: bool,
    /// One JSON object: {"images", "texts", "kind", "matrix", "random_weights"}.
    #[arg(long)]
    json: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16, value_parser = crate::args::positive)]
    batch: usize,
    /// Cut texts longer than the context (77 tokens) instead of refusing them.
    #[arg(long)]
    truncate: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Prints an N x M matrix with row and column names.
pub fn print_matrix(rows: &[String], cols: &[String], m: &[f32], precision: usize) {
    let short = |s: &str, n: usize| -> String {
        if s.chars().count() <= n {
            s.to_string()
        } else {
            let mut t: String = s.chars().take(n - 1).collect();
            t.push('~');
            t
        }
    };
    let rw = rows
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, 32);
    let cw = cols
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(precision + 4, 16);
    let mut line = format!("{:rw$}", "");
    for c in cols {
        line.push_str(&format!("  {:>cw$}", short(c, cw)));
    }
    println!("{line}");
    for (r, vals) in rows.iter().zip(m.chunks_exact(cols.len().max(1))) {
        let mut line = format!("{:rw$}", short(r, rw));
        for v in vals {
            line.push_str(&format!("  {v:>cw$.precision$}"));
        }
        println!("{line}");
    }
}

pub fn run(a: &SimilarityArgs) -> Result<(), String> {
    for p in &a.images {
        crate::args::input_file(p)?;
    }
    let loaded = model_dir::load(&a.model, Some(a.batch))?;
    let model = &loaded.model;
    let err = |e: clip::Error| e.to_string();
    let images = model.embed_image_files(&a.images).map_err(err)?;
    let truncation = match a.truncate {
        true => Truncation::Cut,
        false => Truncation::Refuse,
    };
    let texts = model.embed_texts(&a.texts, truncation).map_err(err)?;
    let sim = model.similarity(&images, &texts).map_err(err)?;
    let matrix: Vec<f32> = if a.logits {
        sim.logits()
    } else {
        sim.cosine().to_vec()
    };
    let kind = if a.logits { "logits" } else { "cosine" };
    let names: Vec<String> = a.images.iter().map(|p| p.display().to_string()).collect();
    if a.json {
        let rows: Vec<&[f32]> = matrix.chunks_exact(a.texts.len()).collect();
        let obj = serde_json::json!({
            "images": names,
            "texts": a.texts,
            "kind": kind,
            "matrix": rows,
            "random_weights": loaded.random(),
        });
        println!("{obj}");
    } else {
        println!("{kind} (rows: images, columns: texts)");
        print_matrix(&names, &a.texts, &matrix, if a.logits { 2 } else { 4 });
    }
    Ok(())
}
