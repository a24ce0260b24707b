//! `ClipModel`: a folder (or file) of weights loaded into both towers, and the API users call:
//! embeddings of pixels, images, token ids and texts; logits and probabilities; zero-shot
//! classification. Send + Sync: share one model between threads.

use crate::config::{ClipConfig, TextConfig, VisionConfig};
use crate::layers::{Layout, Packing};
use crate::text::{TextOutput, TextTower};
use crate::vision::{VisionOutput, VisionTower};
use crate::weights::WeightFile;
use crate::{Error, Result};
use clip_kernels::{rows, Isa, SoftmaxMask};
use clip_tensor::{DType, Precision, Threads};
use clip_tokenizer::Tokenizer;
use std::path::{Path, PathBuf};

/// How to load a model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Threads for every forward pass (0 = all cores).
    pub threads: usize,
    /// Kernel set (default: [`Isa::active`]).
    pub isa: Option<Isa>,
    /// Refuse tensors the model does not use (default: accept and list them).
    pub strict: bool,
    /// The precision the linear-layer weights are kept in (default: bf16 for a bf16 weight
    /// file, f32 otherwise). Activations and accumulation are f32 either way.
    pub precision: Option<Precision>,
    /// Read every tensor once at load and refuse NaN or Inf with
    /// [`Error::NonFiniteWeights`] naming the tensors (default: load them as they are).
    pub validate: bool,
}

/// Rows of embeddings, `[rows, dim]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    pub data: Vec<f32>,
    pub rows: usize,
    pub dim: usize,
}

impl Embeddings {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Each row divided by its L2 norm (as `x / x.norm(dim=-1, keepdim=True)`).
    pub fn normalized(mut self) -> Embeddings {
        if self.dim > 0 {
            for row in self.data.chunks_exact_mut(self.dim) {
                let norm = row.iter().map(|&v| v * v).sum::<f32>().sqrt();
                for v in row {
                    *v /= norm;
                }
            }
        }
        self
    }
}

/// `logits_per_image` `[N, M]` and `logits_per_text` `[M, N]` = exp(logit_scale) x cosine.
#[derive(Clone, Debug, PartialEq)]
pub struct Logits {
    pub per_image: Vec<f32>,
    pub per_text: Vec<f32>,
    pub images: usize,
    pub texts: usize,
}

impl Logits {
    /// Softmax of each image's row over the texts, `[N, M]`.
    pub fn probs_per_image(&self) -> Vec<f32> {
        let mut p = self.per_image.clone();
        if self.texts > 0 {
            rows::softmax_rows(Isa::Scalar, &mut p, self.texts, SoftmaxMask::None);
        }
        p
    }
}

/// A loaded CLIP model.
pub struct ClipModel {
    pub config: ClipConfig,
    pub vision: VisionTower,
    pub text: TextTower,
    /// The learned temperature, as stored (its exp scales the logits).
    pub logit_scale: f32,
    pub layout: Layout,
    tokenizer: Tokenizer,
    threads: Threads,
    weights_path: PathBuf,
    weights_size: usize,
    weights_dtype: Option<DType>,
    precision: Precision,
    unused: Vec<String>,
}

impl std::fmt::Debug for ClipModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipModel")
            .field("weights", &self.weights_path)
            .field("config", &self.config)
            .finish()
    }
}

fn hf_keys_present(wf: &WeightFile) -> bool {
    wf.contains("vision_model.embeddings.patch_embedding.weight")
}

fn openai_keys_present(wf: &WeightFile) -> bool {
    wf.contains("visual.conv1.weight")
}

/// Counts `prefix.0.*`, `prefix.1.*`, ... layers.
fn count_layers(wf: &WeightFile, prefix: &str) -> usize {
    let mut n = 0;
    while wf.keys().any(|k| k.starts_with(&format!("{prefix}.{n}."))) {
        n += 1;
    }
    n
}

fn dim(wf: &WeightFile, key: &str, axis: usize) -> Result<usize> {
    let shape = wf.shape(key).ok_or_else(|| Error::MissingTensor {
        key: key.to_string(),
    })?;
    shape.get(axis).copied().ok_or_else(|| Error::WrongShape {
        key: key.to_string(),
        expected: vec![0; axis + 1],
        found: shape.to_vec(),
    })
}

/// The configuration implied by the tensor shapes; head counts from `heads` or width / 64
/// (OpenAI's rule).
fn infer_config(
    wf: &WeightFile,
    layout: Layout,
    heads: Option<(usize, usize)>,
) -> Result<ClipConfig> {
    let hf = layout == Layout::HuggingFace;
    let k = |h: &'static str, o: &'static str| if hf { h } else { o };
    let conv = k(
        "vision_model.embeddings.patch_embedding.weight",
        "visual.conv1.weight",
    );
    let width = dim(wf, conv, 0)?;
    let patch = dim(wf, conv, 2)?;
    let positions = dim(
        wf,
        k(
            "vision_model.embeddings.position_embedding.weight",
            "visual.positional_embedding",
        ),
        0,
    )?;
    let grid = ((positions.saturating_sub(1)) as f64).sqrt().round() as usize;
    if grid * grid + 1 != positions {
        return Err(Error::InvalidConfig {
            path: wf.path().to_path_buf(),
            reason: format!("{positions} vision positions is not a square grid plus a class token"),
        });
    }
    let vprefix = k(
        "vision_model.encoder.layers",
        "visual.transformer.resblocks",
    );
    let tprefix = k("text_model.encoder.layers", "transformer.resblocks");
    let vmlp = dim(
        wf,
        &format!("{vprefix}.0.{}", k("mlp.fc1.weight", "mlp.c_fc.weight")),
        0,
    )?;
    let twidth = dim(
        wf,
        k("text_model.final_layer_norm.weight", "ln_final.weight"),
        0,
    )?;
    let tok = k(
        "text_model.embeddings.token_embedding.weight",
        "token_embedding.weight",
    );
    let tmlp = dim(
        wf,
        &format!("{tprefix}.0.{}", k("mlp.fc1.weight", "mlp.c_fc.weight")),
        0,
    )?;
    let projection_dim = if hf {
        dim(wf, "visual_projection.weight", 0)?
    } else {
        dim(wf, "visual.proj", 1)?
    };
    let (vheads, theads) = heads.unwrap_or((width / 64, twidth / 64));
    let act = clip_kernels::Activation::QuickGelu;
    let cfg = ClipConfig {
        vision: VisionConfig {
            hidden_size: width,
            intermediate_size: vmlp,
            num_hidden_layers: count_layers(wf, vprefix),
            num_attention_heads: vheads.max(1),
            image_size: grid * patch,
            patch_size: patch,
            num_channels: 3,
            layer_norm_eps: 1e-5,
            hidden_act: act,
        },
        text: TextConfig {
            hidden_size: twidth,
            intermediate_size: tmlp,
            num_hidden_layers: count_layers(wf, tprefix),
            num_attention_heads: theads.max(1),
            vocab_size: dim(wf, tok, 0)?,
            max_position_embeddings: dim(
                wf,
                k(
                    "text_model.embeddings.position_embedding.weight",
                    "positional_embedding",
                ),
                0,
            )?,
            layer_norm_eps: 1e-5,
            hidden_act: act,
            eos_token_id: None,
        },
        projection_dim,
    };
    cfg.validate().map_err(|reason| Error::InvalidConfig {
        path: wf.path().to_path_buf(),
        reason,
    })?;
    Ok(cfg)
}

/// Tensors the model may find in a checkpoint and ignore.
fn ignorable(key: &str) -> bool {
    key.ends_with("position_ids") || key == "attn_mask" || key.ends_with(".attn_mask")
}

impl ClipModel {
    /// Loads a model folder: Hugging Face layout (`config.json` + `model.safetensors`) or an
    /// OpenAI-named `model.safetensors` (config inferred from the shapes).
    pub fn load(dir: impl AsRef<Path>) -> Result<ClipModel> {
        Self::load_with(dir, &LoadOptions::default())
    }

    /// [`ClipModel::load`] with options.
    pub fn load_with(dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<ClipModel> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::MissingFile {
                path: dir.to_path_buf(),
                what: "model folder",
            });
        }
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(Error::MissingFile {
                path: weights,
                what: "model.safetensors",
            });
        }
        let wf = WeightFile::open(&weights)?;
        let config_path = dir.join("config.json");
        let config = if config_path.is_file() {
            Some(ClipConfig::from_hf_json(&config_path)?)
        } else {
            None
        };
        // The tokenizer (~40 ms of parsing merges) is built on its own thread while the
        // weights are packed.
        let has_vocab = dir.join("vocab.json").is_file() && dir.join("merges.txt").is_file();
        Self::build(wf, config, opts, || {
            if has_vocab {
                Tokenizer::from_hf_dir(dir)
            } else {
                Tokenizer::new()
            }
        })
    }

    /// Builds the model from an open weight file; `config` (from `config.json`) fixes the
    /// head counts and is checked against every tensor shape.
    pub fn from_weights(
        wf: WeightFile,
        config: Option<ClipConfig>,
        tokenizer: Tokenizer,
        opts: &LoadOptions,
    ) -> Result<ClipModel> {
        Self::build(wf, config, opts, || Ok(tokenizer))
    }

    /// [`ClipModel::from_weights`] with the tokenizer made by `tokenizer` on a thread of its
    /// own, while the weights are packed.
    fn build(
        wf: WeightFile,
        config: Option<ClipConfig>,
        opts: &LoadOptions,
        tokenizer: impl FnOnce() -> std::result::Result<Tokenizer, clip_tokenizer::Error> + Send,
    ) -> Result<ClipModel> {
        std::thread::scope(|s| {
            let tokenizer = s.spawn(tokenizer);
            Self::load_weights(wf, config, opts, || {
                tokenizer
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        })
    }

    /// Loads and packs the towers, then takes the tokenizer from `tokenizer`.
    fn load_weights(
        wf: WeightFile,
        config: Option<ClipConfig>,
        opts: &LoadOptions,
        tokenizer: impl FnOnce() -> std::result::Result<Tokenizer, clip_tokenizer::Error>,
    ) -> Result<ClipModel> {
        let layout = if hf_keys_present(&wf) {
            Layout::HuggingFace
        } else if openai_keys_present(&wf) {
            Layout::OpenAi
        } else {
            return Err(Error::UnknownLayout {
                path: wf.path().to_path_buf(),
            });
        };
        // With a config.json, every tensor is checked against the shape it implies (errors
        // name the tensor); without one, the config is inferred from the shapes.
        let config = match config {
            Some(c) => c,
            None => infer_config(&wf, layout, None)?,
        };
        if opts.validate {
            wf.check_finite()?;
        }
        let threads = Threads::with_isa(opts.threads, opts.isa.unwrap_or_else(Isa::active))?;
        let precision = opts.precision.unwrap_or(match wf.dtype() {
            Some(DType::BF16) => Precision::Bf16,
            _ => Precision::F32,
        });
        let pk = Packing {
            th: &threads,
            precision,
        };
        let vision = VisionTower::load(&wf, layout, &config.vision, config.projection_dim, &pk)?;
        let text = TextTower::load(&wf, layout, &config.text, config.projection_dim, &pk)?;
        let scale = wf.get_f32("logit_scale", &[])?;
        let unused: Vec<String> = wf.unused().into_iter().filter(|k| !ignorable(k)).collect();
        if opts.strict {
            if let Some(k) = unused.first() {
                return Err(Error::InvalidWeights {
                    path: wf.path().to_path_buf(),
                    reason: format!("unexpected tensor {k} ({} unused in all)", unused.len()),
                });
            }
        }
        Ok(ClipModel {
            config,
            vision,
            text,
            logit_scale: scale[0],
            layout,
            tokenizer: tokenizer()?,
            threads,
            weights_path: wf.path().to_path_buf(),
            weights_size: wf.size(),
            weights_dtype: wf.dtype(),
            precision,
            unused,
        })
    }

    /// The tokenizer (the folder's, or CLIP's embedded vocabulary).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn threads(&self) -> &Threads {
        &self.threads
    }

    /// Tensors in the file that the model did not use.
    pub fn unused_tensors(&self) -> &[String] {
        &self.unused
    }

    pub fn weights_path(&self) -> &Path {
        &self.weights_path
    }

    pub fn weights_size(&self) -> usize {
        self.weights_size
    }

    /// The precision the linear-layer weights are kept in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The storage dtype of the weight file.
    pub fn weights_dtype(&self) -> Option<DType> {
        self.weights_dtype
    }

    /// The full vision pass on `[n, 3, S, S]` pixels, with per-layer states if asked for.
    pub fn vision_forward(
        &self,
        pixels: &[f32],
        n: usize,
        hidden_states: bool,
    ) -> Result<VisionOutput> {
        // One entry into the pool for the whole pass: its parallel regions then start from a
        // worker instead of each blocking this thread on a hand-off.
        let th = &self.threads;
        th.install(|| self.vision.forward(pixels, n, hidden_states, th))
    }

    /// The full text pass on id sequences (see [`TextTower::forward`]).
    pub fn text_forward(
        &self,
        seqs: &[&[u32]],
        full_context: bool,
        hidden_states: bool,
    ) -> Result<TextOutput> {
        let th = &self.threads;
        th.install(|| self.text.forward(seqs, full_context, hidden_states, th))
    }

    /// Projected image features (not normalised), `[n, D]`.
    pub fn image_features(&self, pixels: &[f32], n: usize) -> Result<Embeddings> {
        let out = self.vision_forward(pixels, n, false)?;
        Ok(Embeddings {
            data: out.features,
            rows: n,
            dim: self.config.projection_dim,
        })
    }

    /// L2-normalised image embeddings, `[n, D]`.
    pub fn encode_pixels(&self, pixels: &[f32], n: usize) -> Result<Embeddings> {
        Ok(self.image_features(pixels, n)?.normalized())
    }

    /// L2-normalised embeddings of image files (PNG, JPEG), decoded and preprocessed in
    /// parallel with the model folder's settings (or CLIP's defaults).
    #[cfg(feature = "image")]
    pub fn encode_image_files<P: AsRef<Path> + Sync>(
        &self,
        paths: &[P],
        pre: &crate::image::Preprocessor,
    ) -> Result<Embeddings> {
        let pv = self.threads.install(|| pre.preprocess_batch(paths))?;
        let s = self.config.vision.image_size;
        if pv.shape[2] != s || pv.shape[3] != s {
            return Err(Error::InvalidInput {
                reason: format!(
                    "preprocessing gives {}x{} images; the model needs {s}x{s}",
                    pv.shape[2], pv.shape[3]
                ),
            });
        }
        self.encode_pixels(&pv.data, pv.shape[0])
    }

    /// Projected text features (not normalised) for id sequences (each SOT ... EOT, padding
    /// after EOT allowed), `[M, D]`.
    pub fn text_features(&self, seqs: &[&[u32]]) -> Result<Embeddings> {
        let out = self.text_forward(seqs, false, false)?;
        Ok(Embeddings {
            data: out.features,
            rows: seqs.len(),
            dim: self.config.projection_dim,
        })
    }

    /// L2-normalised text embeddings for id sequences.
    pub fn encode_token_ids(&self, seqs: &[&[u32]]) -> Result<Embeddings> {
        Ok(self.text_features(seqs)?.normalized())
    }

    /// L2-normalised text embeddings: tokenized as `clip.tokenize` does (an error if a text
    /// is longer than the context).
    pub fn encode_texts<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Embeddings> {
        let rows =
            self.tokenizer
                .tokenize(texts, self.config.text.max_position_embeddings, false)?;
        let seqs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        self.encode_token_ids(&seqs)
    }

    /// exp(logit_scale) x cosine similarity of normalised embeddings.
    pub fn logits(&self, images: &Embeddings, texts: &Embeddings) -> Result<Logits> {
        if images.dim != texts.dim {
            return Err(Error::InvalidInput {
                reason: format!(
                    "image embeddings have {} dims, text {}",
                    images.dim, texts.dim
                ),
            });
        }
        let scale = self.logit_scale.exp();
        let (n, m) = (images.rows, texts.rows);
        let mut per_image = vec![0.0f32; n * m];
        for i in 0..n {
            for j in 0..m {
                let dot: f32 = images
                    .row(i)
                    .iter()
                    .zip(texts.row(j))
                    .map(|(a, b)| a * b)
                    .sum();
                per_image[i * m + j] = scale * dot;
            }
        }
        let mut per_text = vec![0.0f32; m * n];
        for i in 0..n {
            for j in 0..m {
                per_text[j * n + i] = per_image[i * m + j];
            }
        }
        Ok(Logits {
            per_image,
            per_text,
            images: n,
            texts: m,
        })
    }

    /// Zero-shot classification of one image (`[1, 3, S, S]` pixels) against `labels`, each
    /// put into `template` at `{}`. Returns (label, probability), most likely first.
    pub fn classify_pixels(
        &self,
        pixels: &[f32],
        labels: &[&str],
        template: &str,
    ) -> Result<Vec<(String, f32)>> {
        if labels.is_empty() {
            return Err(Error::InvalidInput {
                reason: "no labels to classify against".into(),
            });
        }
        if !template.contains("{}") {
            return Err(Error::InvalidInput {
                reason: format!("template {template:?} has no {{}} for the label"),
            });
        }
        let prompts: Vec<String> = labels
            .iter()
            .map(|l| template.replacen("{}", l, 1))
            .collect();
        let texts = self.encode_texts(&prompts)?;
        let image = self.encode_pixels(pixels, 1)?;
        let probs = self.logits(&image, &texts)?.probs_per_image();
        let mut out: Vec<(String, f32)> = labels.iter().map(|l| l.to_string()).zip(probs).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }
}
