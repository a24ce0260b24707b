//! `clip classify IMAGE... --labels "cat,dog"`: zero-shot classification with one prompt
//! template or the CLIP paper's 80-template ImageNet ensemble; top-k labels per image as a
//! table or one JSON object per image.
//!
//! Ensembling (per class): normalise each template's text embedding, average, renormalise.

use crate::model_dir::{self, ModelArgs};
use crate::templates;
use clap::Args;
use clip::{ClipModel, Embeddings};
use std::path::PathBuf;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  clip classify cat.jpg --labels \"cat,dog,car\"\n  clip classify a.jpg b.png --labels \"cat,dog\" --templates imagenet -k 1 --json\n  clip classify cat.jpg --labels \"cat,dog\" --template \"a drawing of a {}.\"\n  clip classify cat.jpg --labels \"cat,dog\" --random-weights"
)]
pub struct ClassifyArgs {
    /// Images to classify (PNG, JPEG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Comma-separated class names.
    #[arg(long)]
    labels: String,
    /// Prompt template; `{}` is replaced by each label.
    #[arg(long, default_value = "a photo of a {}.")]
    template: String,
    /// A template ensemble instead of --template: `imagenet` (the CLIP paper's 80 prompts).
    #[arg(long, value_parser = ["imagenet"], conflicts_with = "template")]
    templates: Option<String>,
    /// How many labels to print per image.
    #[arg(short = 'k', long, default_value_t = 5)]
    top_k: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// One JSON object per image instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// The labels of `--labels`: split on commas, trimmed, empty ones refused.
pub fn parse_labels(s: &str) -> Result<Vec<String>, String> {
    let labels: Vec<String> = s.split(',').map(|l| l.trim().to_string()).collect();
    if labels.iter().all(|l| l.is_empty()) {
        return Err(
            "--labels is empty: give comma-separated class names, e.g. --labels \"cat,dog\"".into(),
        );
    }
    if labels.iter().any(|l| l.is_empty()) {
        return Err(format!("--labels {s:?} has an empty label"));
    }
    Ok(labels)
}

/// One normalised text embedding per label: the (renormalised) mean of the normalised
/// embeddings of the label in each template.
pub fn class_embeddings(
    model: &ClipModel,
    labels: &[String],
    templates: &[&str],
) -> Result<Embeddings, String> {
    let prompts: Vec<String> = labels
        .iter()
        .flat_map(|l| templates.iter().map(move |t| t.replacen("{}", l, 1)))
        .collect();
    let dim = model.config.projection_dim;
    let mut each = Vec::with_capacity(prompts.len() * dim);
    for chunk in prompts.chunks(256) {
        let e = model.encode_texts(chunk).map_err(|e| e.to_string())?;
        each.extend_from_slice(&e.data);
    }
    let t = templates.len();
    let mut data = vec![0f32; labels.len() * dim];
    for (c, row) in data.chunks_exact_mut(dim).enumerate() {
        for k in 0..t {
            let src = &each[(c * t + k) * dim..][..dim];
            row.iter_mut().zip(src).for_each(|(d, s)| *d += s);
        }
        row.iter_mut().for_each(|d| *d /= t as f32);
    }
    Ok(Embeddings {
        data,
        rows: labels.len(),
        dim,
    }
    .normalized())
}

pub fn run(a: &ClassifyArgs) -> Result<(), String> {
    let labels = parse_labels(&a.labels)?;
    let templates: Vec<&str> = match a.templates.as_deref() {
        Some(_) => templates::IMAGENET.to_vec(),
        None => {
            if !a.template.contains("{}") {
                return Err(format!(
                    "--template {:?} has no {{}} where the label goes, e.g. \"a photo of a {{}}.\"",
                    a.template
                ));
            }
            vec![a.template.as_str()]
        }
    };
    if a.top_k == 0 {
        return Err("--top-k must be at least 1".into());
    }
    for p in &a.images {
        if !p.is_file() {
            return Err(format!("{}: no such image file", p.display()));
        }
    }
    let loaded = model_dir::load(&a.model)?;
    let pre = loaded.preprocessor()?;
    let classes = class_embeddings(&loaded.model, &labels, &templates)?;
    let k = a.top_k.min(labels.len());
    for chunk in a.images.chunks(a.batch.max(1)) {
        let images = loaded.encode_files(&pre, chunk, chunk.len())?;
        let probs = loaded
            .model
            .logits(&images, &classes)
            .map_err(|e| e.to_string())?
            .probs_per_image();
        for (path, row) in chunk.iter().zip(probs.chunks_exact(labels.len())) {
            let mut order: Vec<usize> = (0..labels.len()).collect();
            order.sort_by(|&i, &j| row[j].total_cmp(&row[i]));
            let top = &order[..k];
            if a.json {
                let top: Vec<_> = top
                    .iter()
                    .map(|&i| serde_json::json!({"label": labels[i], "prob": row[i]}))
                    .collect();
                let obj = serde_json::json!({
                    "image": path.display().to_string(),
                    "top": top,
                    "random_weights": loaded.random(),
                });
                println!("{obj}");
            } else {
                println!("{}", path.display());
                for &i in top {
                    println!("  {:>7.2}%  {}", 100.0 * row[i], labels[i]);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_labels;

    #[test]
    fn labels_are_trimmed_and_empty_ones_refused() {
        assert_eq!(parse_labels(" cat, dog ").unwrap(), ["cat", "dog"]);
        assert!(parse_labels("").is_err());
        assert!(parse_labels(" , ").is_err());
        assert!(parse_labels("cat,,dog").is_err());
    }
}
