//! `clip classify IMAGE... --labels "cat,dog"`: zero-shot classification with one prompt
//! template or the CLIP paper's 80-template ImageNet ensemble; top-k labels per image as a
//! table or one JSON object per image.
//!
//! Ensembling (per class): normalise each template's text embedding, average, renormalise.

use crate::model_dir::{self, ModelArgs};
use clap::Args;
use clip::{Truncation, IMAGENET_TEMPLATES};
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
    #[arg(long, default_value_t = 16, value_parser = crate::args::positive)]
    batch: usize,
    /// One JSON object per image instead of a table.
    #[arg(long)]
    json: bool,
    /// Cut prompts longer than the context (77 tokens) instead of refusing them.
    #[arg(long)]
    truncate: bool,
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
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = labels.iter().find(|l| !seen.insert(l.as_str())) {
        return Err(format!("--labels {s:?} names {dup:?} twice"));
    }
    Ok(labels)
}

pub fn run(a: &ClassifyArgs) -> Result<(), String> {
    let labels = parse_labels(&a.labels)?;
    let templates: Vec<&str> = match a.templates.as_deref() {
        Some(_) => IMAGENET_TEMPLATES.to_vec(),
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
        crate::args::input_file(p)?;
    }
    let loaded = model_dir::load(&a.model, Some(a.batch))?;
    let model = &loaded.model;
    let truncation = match a.truncate {
        true => Truncation::Cut,
        false => Truncation::Refuse,
    };
    let classifier = model
        .zero_shot_classifier(&labels, &templates, truncation)
        .map_err(|e| e.to_string())?;
    let k = a.top_k.min(labels.len());
    for chunk in a.images.chunks(a.batch) {
        let images = model.embed_image_files(chunk).map_err(|e| e.to_string())?;
        let top = classifier.classify(&images, k).map_err(|e| e.to_string())?;
        for (path, top) in chunk.iter().zip(top) {
            if a.json {
                let top: Vec<_> = top
                    .iter()
                    .map(|p| serde_json::json!({"label": p.label, "prob": p.prob}))
                    .collect();
                let obj = serde_json::json!({
                    "image": path.display().to_string(),
                    "top": top,
                    "random_weights": loaded.random(),
                });
                println!("{obj}");
            } else {
                println!("{}", path.display());
                for p in top {
                    println!("  {:>7.2}%  {}", 100.0 * p.prob, p.label);
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
        assert!(parse_labels("cat,dog, cat").is_err());
    }
}
