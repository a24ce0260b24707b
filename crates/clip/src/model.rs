//! `ClipModel`: a checkpoint loaded into both towers with its tokenizer and preprocessor,
//! and the calls users make: embeddings of images (files, encoded bytes, RGB, pixel values)
//! and texts, raw features, per-layer hidden states, similarity and zero-shot classification.
//! Send + Sync: share one model between threads.
//!
//! Not here: key names and config files (`checkpoint/`), the towers (`vision.rs`, `text.rs`),
//! result types (`embeddings.rs`), ensembles (`zero_shot.rs`).

use crate::checkpoint::{hf, infer, open_clip, Format};
use crate::embeddings::{Embeddings, Features, Similarity};
use crate::image::{ImageInput, PixelValues, Preprocessor, RgbImage};
use crate::loader::{Init, Source, Vb};
use crate::options::{ForwardOptions, LoadOptions, Truncation, DEFAULT_BATCH_SIZE};
use crate::text::{TextOutput, TextTower};
use crate::vision::{VisionOutput, VisionTower};
use crate::weights::WeightFile;
use crate::{Bf16Kernel, ClipConfig, DType, Error, Isa, Precision, Result};
use clip_tensor::Exec;
use clip_tokenizer::Tokenizer;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a model's weights came from.
#[derive(Clone, Debug)]
struct Origin {
    /// The weight file, `None` for random weights.
    path: Option<PathBuf>,
    format: Option<Format>,
    size: usize,
    dtype: Option<DType>,
}

/// The packed weights of a model and what they were packed for.
pub(crate) struct Towers {
    vision: VisionTower,
    text: TextTower,
    logit_scale: f32,
    exec: Exec,
    precision: Precision,
    batch_size: usize,
}

impl Towers {
    /// Validates `config`, then loads and packs both towers from `src`.
    pub(crate) fn load(src: &Source, config: &ClipConfig, opts: &LoadOptions) -> Result<Towers> {
        config.validate().map_err(|reason| Error::InvalidConfig {
            path: PathBuf::from("<configuration>"),
            reason,
        })?;
        let batch_size = opts.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if batch_size == 0 {
            return Err(Error::InvalidArgument {
                reason: "batch size 0: give at least 1".into(),
            });
        }
        let mut exec = Exec::new(opts.threads, opts.kernels.unwrap_or_else(Isa::active))?;
        if let Some(k) = opts.bf16_kernel {
            exec = exec.with_bf16_kernel(k)?;
        }
        let precision = opts.precision.unwrap_or_default();
        let vb = Vb::new(src, precision, &exec);
        let logit_scale = vb.vec("logit_scale", &[], Init::Const(100f32.ln()))?[0];
        // Its exp multiplies every cosine: past ~88.7 that is Inf, and every probability NaN.
        if !logit_scale.exp().is_finite() {
            return Err(Error::InvalidWeights {
                path: src.path(),
                reason: format!(
                    "logit_scale = {logit_scale}: its exp is not a finite f32 (OpenAI's models \
                     store ln 100 = 4.605)"
                ),
            });
        }
        Ok(Towers {
            vision: VisionTower::load(&vb, &config.vision, config.projection_dim)?,
            text: TextTower::load(&vb, &config.text, config.projection_dim)?,
            logit_scale,
            exec,
            precision,
            batch_size,
        })
    }
}

/// A loaded CLIP model.
pub struct ClipModel {
    config: ClipConfig,
    vision: VisionTower,
    text: TextTower,
    logit_scale: f32,
    tokenizer: Arc<Tokenizer>,
    preprocessor: Preprocessor,
    exec: Exec,
    precision: Precision,
    batch_size: usize,
    origin: Origin,
    unused: Vec<String>,
}

impl std::fmt::Debug for ClipModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipModel")
            .field("weights", &self.origin.path)
            .field("config", &self.config)
            .finish()
    }
}

/// Tensors the model may find in a checkpoint and ignore.
fn ignorable(key: &str) -> bool {
    key.ends_with("position_ids") || key == "attn_mask" || key.ends_with(".attn_mask")
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

impl ClipModel {
    /// Loads a model folder: `model.safetensors` with Hugging Face or OpenAI key names, and
    /// if present `config.json` (else the configuration is inferred from the shapes),
    /// `preprocessor_config.json` (else CLIP's defaults), `vocab.json` + `merges.txt` (else
    /// CLIP's vocabulary).
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
        if dir.join(open_clip::CONFIG_FILE).is_file() {
            return Self::load_open_clip(dir, opts);
        }
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            let what = match dir.join("pytorch_model.bin").is_file() {
                true => crate::hub::PYTORCH_ONLY,
                false => "model.safetensors",
            };
            return Err(Error::MissingFile {
                path: weights,
                what,
            });
        }
        let config_path = dir.join("config.json");
        let config = if config_path.is_file() {
            Some(hf::read_config(&read(&config_path)?, &config_path)?)
        } else {
            None
        };
        let mut opts = opts.clone();
        if opts.preprocessor.is_none() {
            opts.preprocessor = Some(Preprocessor::from_model_dir(dir)?);
        }
        let wf = WeightFile::open(&weights)?;
        // The tokenizer (parsing 48,894 merges) is built on its own thread while the weights
        // are packed.
        let has_vocab = dir.join("vocab.json").is_file() && dir.join("merges.txt").is_file();
        Self::from_file(wf, config, &opts, || {
            if has_vocab {
                Tokenizer::from_hf_dir(dir)
            } else {
                Tokenizer::new()
            }
        })
    }

    /// An open_clip folder: `open_clip_config.json` (model and preprocessing) and the
    /// weights in OpenAI key names; CLIP's tokenizer.
    fn load_open_clip(dir: &Path, opts: &LoadOptions) -> Result<ClipModel> {
        let config_path = dir.join(open_clip::CONFIG_FILE);
        let (config, pre) = open_clip::read_config(&read(&config_path)?, &config_path)?;
        let weights = open_clip::WEIGHT_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::MissingFile {
                path: dir.join(open_clip::WEIGHT_FILES[0]),
                what: "open_clip_model.safetensors (open_clip's weights in safetensors; \
                       open_clip_pytorch_model.bin is not read)",
            })?;
        let mut opts = opts.clone();
        if opts.preprocessor.is_none() {
            opts.preprocessor = Some(Preprocessor {
                config: pre.preprocess_config(),
                ..Preprocessor::default()
            });
        }
        let wf = WeightFile::open(&weights)?;
        Self::from_file(wf, Some(config), &opts, Tokenizer::new)
    }

    /// Loads the model `spec` names, as Hugging Face tools find it (see [`crate::hub`]): a
    /// folder, or a repository name (`openai/clip-vit-base-patch32`) in the local cache; with
    /// `None`, `CLIP_MODEL` and then that repository. Nothing is downloaded.
    pub fn from_pretrained(spec: Option<&str>, opts: &LoadOptions) -> Result<ClipModel> {
        match crate::hub::find_model(spec)? {
            Some(dir) => Self::load_with(dir, opts),
            None => Err(Error::MissingFile {
                path: crate::hub::hub_cache_dir().unwrap_or_default(),
                what: "CLIP model: none named, CLIP_MODEL is not set, and the Hugging Face \
                       cache has no openai/clip-vit-base-patch32 with model.safetensors",
            }),
        }
    }

    /// A model from the bytes of a safetensors file held in memory, with the bytes of a
    /// Hugging Face `config.json` if there is one (else the configuration is inferred from
    /// the shapes). Decoding and text use CLIP's defaults unless `opts` gives others.
    pub fn from_safetensors_bytes(
        bytes: Vec<u8>,
        config_json: Option<&[u8]>,
        opts: &LoadOptions,
    ) -> Result<ClipModel> {
        let config = config_json
            .map(|c| hf::read_config(c, Path::new("config.json")))
            .transpose()?;
        let wf = WeightFile::from_bytes(Path::new("model.safetensors"), bytes)?;
        Self::from_file(wf, config, opts, Tokenizer::new)
    }

    /// A model of configuration `cfg` with seeded random weights (no files). For trying the
    /// engine and for benchmarks only: its embeddings mean nothing.
    pub fn random(cfg: &ClipConfig, seed: u64, opts: &LoadOptions) -> Result<ClipModel> {
        let src = Source::Random { seed, record: None };
        Self::from_source(&src, cfg.clone(), opts, || match &opts.tokenizer {
            Some(t) => Ok(t.clone()),
            None => Ok(Arc::new(Tokenizer::new()?)),
        })
    }

    /// Builds from an open weight file, with the tokenizer made by `tokenizer` on a thread of
    /// its own while the weights are packed.
    fn from_file(
        wf: WeightFile,
        config: Option<ClipConfig>,
        opts: &LoadOptions,
        tokenizer: impl FnOnce() -> std::result::Result<Tokenizer, clip_tokenizer::Error> + Send,
    ) -> Result<ClipModel> {
        let format = Format::detect(&wf).ok_or_else(|| Error::UnknownLayout {
            path: wf.path().to_path_buf(),
        })?;
        let path = wf.path().to_path_buf();
        let src = Source::File {
            wf,
            format,
            int8: None,
        };
        // With a config file, every tensor is checked against the shape it implies (errors
        // name the tensor); without one, the configuration is inferred from the shapes.
        let config = match config {
            Some(c) => c,
            None => infer::from_shapes(&src, &path)?,
        };
        let Source::File { wf, .. } = &src else {
            unreachable!("made as a file source above")
        };
        if opts.validate {
            wf.check_finite()?;
        }
        let mut opts = opts.clone();
        let precision = opts.precision.unwrap_or(match wf.dtype() {
            _ if wf.is_quantized() => Precision::Int8,
            Some(DType::BF16) => Precision::Bf16,
            _ => Precision::F32,
        });
        opts.precision = Some(precision);
        let origin = Origin {
            path: Some(path),
            format: Some(format),
            size: wf.size(),
            dtype: wf.dtype(),
        };
        let preset = opts.tokenizer.clone();
        let mut model = std::thread::scope(|s| {
            let tok = preset.is_none().then(|| s.spawn(tokenizer));
            Self::from_source(&src, config, &opts, || match (preset, tok) {
                (Some(t), _) => Ok(t),
                (None, Some(t)) => Ok(Arc::new(
                    t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?,
                )),
                (None, None) => Ok(Arc::new(Tokenizer::new()?)),
            })
        })?;
        model.origin = origin;
        model.unused = wf.unused().into_iter().filter(|k| !ignorable(k)).collect();
        if opts.strict {
            if let Some(k) = model.unused.first() {
                return Err(Error::InvalidWeights {
                    path: wf.path().to_path_buf(),
                    reason: format!(
                        "unexpected tensor {k} ({} unused in all)",
                        model.unused.len()
                    ),
                });
            }
        }
        Ok(model)
    }

    /// Builds both towers from `src` with `config`, then takes the tokenizer from
    /// `tokenizer`.
    pub(crate) fn from_source(
        src: &Source,
        config: ClipConfig,
        opts: &LoadOptions,
        tokenizer: impl FnOnce() -> Result<Arc<Tokenizer>>,
    ) -> Result<ClipModel> {
        let towers = Towers::load(src, &config, opts)?;
        Ok(ClipModel {
            config,
            vision: towers.vision,
            text: towers.text,
            logit_scale: towers.logit_scale,
            tokenizer: tokenizer()?,
            preprocessor: opts.preprocessor.clone().unwrap_or_default(),
            exec: towers.exec,
            precision: towers.precision,
            batch_size: towers.batch_size,
            origin: Origin {
                path: None,
                format: None,
                size: 0,
                dtype: None,
            },
            unused: Vec::new(),
        })
    }

    // ---- what the model is ----

    /// The configuration (sizes of both towers).
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The tokenizer (the folder's, or CLIP's embedded vocabulary).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The image preprocessor (the folder's `preprocessor_config.json`, or CLIP's defaults).
    pub fn preprocessor(&self) -> &Preprocessor {
        &self.preprocessor
    }

    /// The learned temperature, as stored (its exp scales cosines into logits).
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    /// The precision the linear-layer weights are kept in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The kernel set every pass runs.
    pub fn kernels(&self) -> Isa {
        self.exec.isa()
    }

    /// The kind of kernel that multiplies the bf16 weights (`None` unless the precision is
    /// bf16).
    pub fn bf16_kernel(&self) -> Option<Bf16Kernel> {
        (self.precision == Precision::Bf16).then(|| self.exec.bf16_kernel())
    }

    /// Threads of the model's pool.
    pub fn threads(&self) -> usize {
        self.exec.threads()
    }

    /// Inputs per forward pass in the list-taking `embed_*` calls.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The checkpoint format, `None` for random weights.
    pub fn format(&self) -> Option<Format> {
        self.origin.format
    }

    /// The weight file, `None` for random weights (and `model.safetensors` for bytes).
    pub fn weights_path(&self) -> Option<&Path> {
        self.origin.path.as_deref()
    }

    /// Size of the weight file in bytes (0 for random weights).
    pub fn weights_size(&self) -> usize {
        self.origin.size
    }

    /// The storage dtype of the weight file.
    pub fn weights_dtype(&self) -> Option<DType> {
        self.origin.dtype
    }

    /// Tensors in the file that the model did not use.
    pub fn unused_tensors(&self) -> &[String] {
        &self.unused
    }

    /// Runs `f` on the model's thread pool (so its parallel work uses the model's threads).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.exec.install(f)
    }

    // ---- forward passes ----

    /// The full vision pass on `[n, 3, S, S]` pixel values, with per-layer states if asked.
    pub fn vision_forward(
        &self,
        pixels: &PixelValues,
        opts: ForwardOptions,
    ) -> Result<VisionOutput> {
        let s = self.config.vision.image_size;
        let [n, c, h, w] = pixels.shape;
        if (c, h, w) != (3, s, s) && n > 0 {
            return Err(Error::InvalidInput {
                reason: format!(
                    "pixel values of shape {:?}; the model needs [N, 3, {s}, {s}]",
                    pixels.shape
                ),
            });
        }
        if let Some(i) = pixels.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidInput {
                reason: format!(
                    "pixel values hold NaN or Inf (image {}, value {})",
                    i / (3 * s * s).max(1),
                    pixels.data[i]
                ),
            });
        }
        // One entry into the pool for the whole pass: its parallel regions then start from a
        // worker instead of each blocking this thread on a hand-off.
        let exec = &self.exec;
        exec.install(|| {
            self.vision
                .forward(&pixels.data, n, opts.hidden_states, exec)
        })
    }

    /// The full text pass on id sequences (each SOT ... EOT; padding after EOT allowed).
    pub fn text_forward(&self, seqs: &[&[u32]], opts: ForwardOptions) -> Result<TextOutput> {
        let exec = &self.exec;
        exec.install(|| {
            self.text
                .forward(seqs, opts.full_context, opts.hidden_states, exec)
        })
    }

    /// Projected image features, not normalised (HF's `get_image_features`), `[n, D]`.
    /// Refused NaN or Inf in them: an error naming where they first appear.
    pub fn image_features(&self, pixels: &PixelValues) -> Result<Features> {
        let out = self.vision_forward(pixels, ForwardOptions::new())?;
        if let Some(row) = first_non_finite_row(&out.features, self.config.projection_dim) {
            // The failure path only: run again keeping every layer, to say where.
            let one = PixelValues {
                data: pixels.data[row * pixels.data.len() / pixels.shape[0]..]
                    [..pixels.data.len() / pixels.shape[0]]
                    .to_vec(),
                shape: [1, 3, pixels.shape[2], pixels.shape[3]],
            };
            let full = self.vision_forward(&one, ForwardOptions::new().with_hidden_states())?;
            return Err(self.non_finite("image", row, &full.hidden_states, &full.pooled));
        }
        Features::new(out.features, pixels.shape[0], self.config.projection_dim)
    }

    /// Projected text features, not normalised (HF's `get_text_features`), `[M, D]`.
    /// Refused NaN or Inf in them: an error naming where they first appear.
    pub fn text_features(&self, seqs: &[&[u32]]) -> Result<Features> {
        let out = self.text_forward(seqs, ForwardOptions::new())?;
        if let Some(row) = first_non_finite_row(&out.features, self.config.projection_dim) {
            let full = self.text_forward(
                &seqs[row..row + 1],
                ForwardOptions::new().with_hidden_states(),
            )?;
            return Err(self.non_finite("text", row, &full.hidden_states, &full.pooled));
        }
        Features::new(out.features, seqs.len(), self.config.projection_dim)
    }

    /// The error for non-finite output of input `row`, naming the first stage that had
    /// NaN or Inf: the embeddings (hidden state 0), a layer, the final layer norm, or the
    /// projection.
    fn non_finite(
        &self,
        tower: &'static str,
        row: usize,
        hidden: &[Vec<f32>],
        pooled: &[f32],
    ) -> Error {
        let bad = |v: &[f32]| v.iter().any(|x| !x.is_finite());
        let stage = match hidden.iter().position(|h| bad(h)) {
            Some(0) => "the embeddings (before the first layer)".to_string(),
            Some(i) => format!("layer {i} of {}", hidden.len() - 1),
            None if bad(pooled) => "the final layer norm".to_string(),
            None => "the projection".to_string(),
        };
        Error::NonFiniteOutput {
            tower,
            input: row,
            stage,
        }
    }

    // ---- images ----

    /// Decodes and preprocesses images of any kind in parallel on the model's threads, with
    /// the model's preprocessor: `[N, 3, S, S]`.
    pub fn preprocess(&self, inputs: &[ImageInput<'_>]) -> Result<PixelValues> {
        let pv = self.install(|| self.preprocessor.preprocess_inputs(inputs))?;
        let s = self.config.vision.image_size;
        if !inputs.is_empty() && (pv.shape[2], pv.shape[3]) != (s, s) {
            return Err(Error::InvalidInput {
                reason: format!(
                    "preprocessing gives {}x{} images; the model needs {s}x{s}",
                    pv.shape[3], pv.shape[2]
                ),
            });
        }
        Ok(PixelValues {
            shape: [pv.shape[0], 3, s, s],
            data: pv.data,
        })
    }

    /// Decodes and preprocesses each input on its own, in parallel on the model's threads:
    /// one result per input, in order, each `[1, 3, S, S]` (a batch job can skip the inputs
    /// that fail and embed the rest).
    pub fn preprocess_each(&self, inputs: &[ImageInput<'_>]) -> Vec<Result<PixelValues>> {
        use rayon::prelude::*;
        let s = self.config.vision.image_size;
        self.install(|| {
            inputs
                .par_iter()
                .map(|i| {
                    let pv = self.preprocessor.preprocess_input(i)?;
                    if (pv.shape[2], pv.shape[3]) != (s, s) {
                        return Err(Error::InvalidInput {
                            reason: format!(
                                "{}: preprocessing gives {}x{}; the model needs {s}x{s}",
                                i.label().display(),
                                pv.shape[3],
                                pv.shape[2]
                            ),
                        });
                    }
                    Ok(pv)
                })
                .collect()
        })
    }

    /// L2-normalised embeddings of preprocessed pixel values, `[n, D]`.
    pub fn embed_pixels(&self, pixels: &PixelValues) -> Result<Embeddings> {
        Ok(self.image_features(pixels)?.normalize())
    }

    /// L2-normalised embeddings of images of any kind, `[N, D]`, in order: decoded and
    /// preprocessed in parallel, [`batch_size`](ClipModel::batch_size) at a time.
    pub fn embed_images(&self, inputs: &[ImageInput<'_>]) -> Result<Embeddings> {
        let mut out = Embeddings::empty(self.config.projection_dim);
        for chunk in inputs.chunks(self.batch_size) {
            out.extend(self.embed_pixels(&self.preprocess(chunk)?)?)?;
        }
        Ok(out)
    }

    /// [`embed_images`](ClipModel::embed_images) of image files (PNG, JPEG).
    pub fn embed_image_files<P: AsRef<Path>>(&self, paths: &[P]) -> Result<Embeddings> {
        let inputs: Vec<ImageInput<'_>> =
            paths.iter().map(|p| ImageInput::Path(p.as_ref())).collect();
        self.embed_images(&inputs)
    }

    /// [`embed_images`](ClipModel::embed_images) of encoded images held in memory (errors
    /// call them `image 0`, `image 1`, ...).
    pub fn embed_image_bytes<B: AsRef<[u8]>>(&self, images: &[B]) -> Result<Embeddings> {
        let names: Vec<String> = (0..images.len()).map(|i| format!("image {i}")).collect();
        let inputs: Vec<ImageInput<'_>> = images
            .iter()
            .zip(&names)
            .map(|(b, name)| ImageInput::Bytes {
                bytes: b.as_ref(),
                name,
            })
            .collect();
        self.embed_images(&inputs)
    }

    /// [`embed_images`](ClipModel::embed_images) of decoded RGB images.
    pub fn embed_rgb_images(&self, images: &[RgbImage]) -> Result<Embeddings> {
        let inputs: Vec<ImageInput<'_>> = images.iter().map(ImageInput::Rgb).collect();
        self.embed_images(&inputs)
    }

    // ---- texts ----

    /// Token ids as `clip.tokenize` gives them: one row of the context length per text (SOT,
    /// ids, EOT, zero padding); a text too long is refused or cut, as `truncation` says.
    pub fn tokenize<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        truncation: Truncation,
    ) -> Result<Vec<Vec<u32>>> {
        let ctx = self.config.text.max_position_embeddings;
        let cut = truncation == Truncation::Cut;
        Ok(self.install(|| self.tokenizer.tokenize(texts, ctx, cut))?)
    }

    /// L2-normalised embeddings of token id sequences, `[M, D]`.
    pub fn embed_token_ids(&self, seqs: &[&[u32]]) -> Result<Embeddings> {
        Ok(self.text_features(seqs)?.normalize())
    }

    /// L2-normalised text embeddings, `[M, D]`, tokenized as `clip.tokenize` does and encoded
    /// [`batch_size`](ClipModel::batch_size) texts at a time.
    pub fn embed_texts<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        truncation: Truncation,
    ) -> Result<Embeddings> {
        let mut out = Embeddings::empty(self.config.projection_dim);
        for (i, chunk) in texts.chunks(self.batch_size).enumerate() {
            let rows = self
                .tokenize(chunk, truncation)
                .map_err(|e| renumber(e, i * self.batch_size))?;
            let seqs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
            out.extend(self.embed_token_ids(&seqs)?)?;
        }
        Ok(out)
    }

    // ---- comparing ----

    /// The similarity of `a` (rows, e.g. images) with `b` (columns, e.g. texts): cosines,
    /// and CLIP's logits and probabilities with this model's logit scale.
    pub fn similarity(&self, a: &Embeddings, b: &Embeddings) -> Result<Similarity> {
        Ok(Similarity::new(
            a.cosine(b)?,
            a.rows(),
            b.rows(),
            self.logit_scale.exp(),
        ))
    }
}

/// The first row of `[rows, dim]` values holding NaN or Inf.
fn first_non_finite_row(v: &[f32], dim: usize) -> Option<usize> {
    v.iter()
        .position(|x| !x.is_finite())
        .map(|i| i / dim.max(1))
}

/// A tokenizer error about text `index` of a chunk, renumbered to the whole list.
fn renumber(e: Error, offset: usize) -> Error {
    match e {
        Error::Tokenizer(clip_tokenizer::Error::TooLong {
            index,
            tokens,
            context_length,
        }) => Error::Tokenizer(clip_tokenizer::Error::TooLong {
            index: index + offset,
            tokens,
            context_length,
        }),
        e => e,
    }
}
