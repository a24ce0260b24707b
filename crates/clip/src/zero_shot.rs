//! Zero-shot classification with prompt ensembles, as the CLIP paper does it: each label is
//! put into every template, the normalised text embeddings of a label are averaged and the
//! mean renormalised; an image's probabilities are the softmax of its logits against the
//! class embeddings.
//!
//! Not here: the templates themselves (`templates.rs`).

use crate::{ClipModel, Embeddings, Error, Result, Truncation};

/// Class embeddings for a set of labels, ready to classify image embeddings.
#[derive(Clone, Debug)]
pub struct ZeroShotClassifier {
    labels: Vec<String>,
    classes: Embeddings,
    scale: f32,
}

/// One label of a classification and its probability.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Index of the label in the classifier's list.
    pub index: usize,
    /// The label.
    pub label: String,
    /// Its probability (the softmax over all labels).
    pub prob: f32,
}

impl ClipModel {
    /// A classifier for `labels`, each put into every one of `templates` at `{}` (one
    /// template, or an ensemble such as [`crate::IMAGENET_TEMPLATES`]). Labels must be
    /// distinct and non-empty; each template must have a `{}`.
    pub fn zero_shot_classifier<S: AsRef<str>>(
        &self,
        labels: &[S],
        templates: &[&str],
        truncation: Truncation,
    ) -> Result<ZeroShotClassifier> {
        let labels: Vec<String> = labels.iter().map(|l| l.as_ref().to_string()).collect();
        check(&labels, templates)?;
        let prompts: Vec<String> = labels
            .iter()
            .flat_map(|l| templates.iter().map(move |t| t.replacen("{}", l, 1)))
            .collect();
        let each = self.embed_texts(&prompts, truncation)?;
        let dim = each.dim();
        let t = templates.len();
        let mut data = vec![0f32; labels.len() * dim];
        for (c, row) in data.chunks_exact_mut(dim).enumerate() {
            for k in 0..t {
                let src = each.row(c * t + k);
                row.iter_mut().zip(src).for_each(|(d, s)| *d += s);
            }
            row.iter_mut().for_each(|d| *d /= t as f32);
        }
        let classes = Embeddings::from_unnormalized(data, labels.len(), dim)?;
        Ok(ZeroShotClassifier {
            labels,
            classes,
            scale: self.logit_scale().exp(),
        })
    }
}

fn check(labels: &[String], templates: &[&str]) -> Result<()> {
    let bad = |reason: String| Err(Error::InvalidArgument { reason });
    if labels.is_empty() {
        return bad("no labels to classify against".into());
    }
    if let Some(i) = labels.iter().position(|l| l.trim().is_empty()) {
        return bad(format!("label {i} is empty"));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = labels.iter().find(|l| !seen.insert(l.as_str())) {
        return bad(format!("label {dup:?} is given twice"));
    }
    if templates.is_empty() {
        return bad("no prompt templates".into());
    }
    if let Some(t) = templates.iter().find(|t| !t.contains("{}")) {
        return bad(format!(
            "template {t:?} has no {{}} where the label goes, e.g. \"a photo of a {{}}.\""
        ));
    }
    Ok(())
}

impl ZeroShotClassifier {
    /// The labels, in order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// One normalised embedding per label.
    pub fn class_embeddings(&self) -> &Embeddings {
        &self.classes
    }

    /// The probability of each label for each image, `[images, labels]` row-major.
    pub fn probs(&self, images: &Embeddings) -> Result<Vec<f32>> {
        let cos = images.cosine(&self.classes)?;
        let sim = crate::Similarity::new(cos, images.rows(), self.labels.len(), self.scale);
        Ok(sim.probs())
    }

    /// The `k` most likely labels of each image, most likely first (ties in label order).
    pub fn classify(&self, images: &Embeddings, k: usize) -> Result<Vec<Vec<Prediction>>> {
        let probs = self.probs(images)?;
        let n = self.labels.len();
        Ok(probs
            .chunks_exact(n)
            .map(|row| {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&i, &j| row[j].total_cmp(&row[i]));
                order
                    .into_iter()
                    .take(k)
                    .map(|i| Prediction {
                        index: i,
                        label: self.labels[i].clone(),
                        prob: row[i],
                    })
                    .collect()
            })
            .collect())
    }
}
