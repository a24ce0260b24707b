//! The native `CLIPModel`: one loaded `clip::ClipModel` (Send + Sync, so Python threads share
//! it), with every call's Rust work (loading, decoding, preprocessing, tokenizing, forward
//! passes) run with the GIL released.
//!
//! Not here: argument conversion (`inputs.rs`), PIL images, similarity and docstrings for
//! users (the Python wrapper, `clip_rs/__init__.py`).

use crate::errors::{clip_err, run, run_clip, to_py};
use crate::inputs::{self, Item};
use clip::{
    Bf16Kernel, ClipConfig, ClipModel, Features, ForwardOptions, LoadOptions, Precision, Truncation,
};
use numpy::{PyArray2, PyArray4};
use pyo3::prelude::*;
use pyo3::types::PyDict;

#[pyclass(frozen, name = "CLIPModel", module = "clip_rs._native")]
pub struct Model {
    inner: ClipModel,
}

/// Load options from the keyword arguments every constructor takes.
fn load_options(
    threads: usize,
    precision: Option<&str>,
    batch_size: Option<usize>,
    validate: bool,
    bf16_kernel: Option<&str>,
) -> PyResult<LoadOptions> {
    let mut o = LoadOptions::new().threads(threads).validate(validate);
    match bf16_kernel {
        None => {}
        Some("convert") => o = o.bf16_kernel(Bf16Kernel::Convert),
        Some("dot") => o = o.bf16_kernel(Bf16Kernel::Dot),
        Some(k) => {
            return Err(clip_err(format!(
                "bf16_kernel {k:?}: give \"convert\" or \"dot\""
            )))
        }
    }
    match precision {
        None => {}
        Some("f32" | "fp32" | "float32") => o = o.precision(Precision::F32),
        Some("bf16" | "bfloat16") => o = o.precision(Precision::Bf16),
        Some("int8" | "i8") => o = o.precision(Precision::Int8),
        Some(p) => {
            return Err(clip_err(format!(
                "precision {p:?}: give \"f32\", \"bf16\" or \"int8\""
            )))
        }
    }
    if let Some(b) = batch_size {
        o = o.batch_size(b);
    }
    Ok(o)
}

/// A named configuration (`ViT-B/32`, `ViT-B-32`, ...) or a `config.json` path.
fn named_config(name: &str) -> PyResult<ClipConfig> {
    let key = name.replace(['-', '_'], "/").to_ascii_lowercase();
    Ok(match key.as_str() {
        "vit/b/32" => ClipConfig::vit_base_patch32(),
        "vit/b/16" => ClipConfig::vit_base_patch16(),
        "vit/l/14" => ClipConfig::vit_large_patch14(),
        "vit/l/14/336" => ClipConfig::vit_large_patch14_336(),
        _ => ClipConfig::from_hf_json(std::path::Path::new(name)).map_err(|e| to_py(&e))?,
    })
}

fn truncation(truncate: bool) -> Truncation {
    if truncate {
        Truncation::Cut
    } else {
        Truncation::Refuse
    }
}

impl Model {
    /// The batch size of a call: `batch_size`, else the model's.
    fn batch(&self, batch_size: Option<usize>) -> PyResult<usize> {
        match batch_size {
            Some(0) => Err(clip_err("batch_size 0: give at least 1")),
            Some(b) => Ok(b),
            None => Ok(self.inner.batch_size()),
        }
    }

    /// Raw features of image items, decoded and preprocessed in parallel and encoded
    /// `batch` at a time; GIL released.
    fn images(&self, py: Python<'_>, items: &[Item<'_>], batch: usize) -> PyResult<Features> {
        let m = &self.inner;
        let names = inputs::labels(items, 0);
        let inputs = inputs::image_inputs(items, &names);
        run_clip(py, || {
            let mut out = Features::empty(m.config().projection_dim);
            for chunk in inputs.chunks(batch) {
                out.extend(m.image_features(&m.preprocess(chunk)?)?)?;
            }
            Ok(out)
        })
    }

    /// Raw features of texts, tokenized and encoded `batch` at a time; GIL released.
    fn texts(
        &self,
        py: Python<'_>,
        texts: &[String],
        batch: usize,
        cut: Truncation,
    ) -> PyResult<Features> {
        let m = &self.inner;
        run_clip(py, || {
            let mut out = Features::empty(m.config().projection_dim);
            for (i, chunk) in texts.chunks(batch).enumerate() {
                let rows = m.tokenize(chunk, cut).map_err(|e| renumber(e, i * batch))?;
                let seqs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
                out.extend(m.text_features(&seqs)?)?;
            }
            Ok(out)
        })
    }

    /// Image items of a Python list, checked (GIL held).
    fn items<'a>(objs: &'a [Bound<'_, PyAny>]) -> PyResult<Vec<Item<'a>>> {
        non_empty(objs, "images")?;
        objs.iter()
            .enumerate()
            .map(|(i, o)| inputs::item(o, i))
            .collect()
    }
}

/// Features as a float32 `(N, D)` array, L2-normalised per row if asked (a row's result is
/// the same whichever batch it was computed in).
fn features_array(
    py: Python<'_>,
    f: Features,
    normalize: bool,
) -> PyResult<Bound<'_, PyArray2<f32>>> {
    let (n, d) = (f.rows(), f.dim());
    let data = if normalize {
        f.normalize().into_vec()
    } else {
        f.into_vec()
    };
    inputs::array2(py, data, n, d)
}

/// A tokenizer error about text `index` of a chunk, renumbered to the whole list.
fn renumber(e: clip::Error, offset: usize) -> clip::Error {
    match e {
        clip::Error::Tokenizer(clip::TokenizerError::TooLong {
            index,
            tokens,
            context_length,
        }) => clip::Error::Tokenizer(clip::TokenizerError::TooLong {
            index: index + offset,
            tokens,
            context_length,
        }),
        e => e,
    }
}

/// Refuses an empty list of `what`.
fn non_empty<T>(v: &[T], what: &str) -> PyResult<()> {
    if v.is_empty() {
        return Err(clip_err(format!("no {what} given: the list is empty")));
    }
    Ok(())
}

#[pymethods]
impl Model {
    /// Loads a folder, a repository name in the Hugging Face cache, or (with None)
    /// `CLIP_MODEL` and then openai/clip-vit-base-patch32 in the cache.
    #[new]
    #[pyo3(signature = (model=None, *, threads=0, precision=None, batch_size=None, validate=false, bf16_kernel=None))]
    fn new(
        py: Python<'_>,
        model: Option<std::path::PathBuf>,
        threads: usize,
        precision: Option<&str>,
        batch_size: Option<usize>,
        validate: bool,
        bf16_kernel: Option<&str>,
    ) -> PyResult<Model> {
        let opts = load_options(threads, precision, batch_size, validate, bf16_kernel)?;
        let spec = model.map(|p| p.to_string_lossy().into_owned());
        let inner = run_clip(py, || ClipModel::from_pretrained(spec.as_deref(), &opts))?;
        Ok(Model { inner })
    }

    /// A model of a named size (or a config.json) with seeded random weights.
    #[staticmethod]
    #[pyo3(signature = (config="ViT-B/32", *, seed=0, threads=0, precision=None, batch_size=None))]
    fn random(
        py: Python<'_>,
        config: &str,
        seed: u64,
        threads: usize,
        precision: Option<&str>,
        batch_size: Option<usize>,
    ) -> PyResult<Model> {
        let opts = load_options(threads, precision, batch_size, false, None)?;
        let cfg = named_config(config)?;
        let inner = run_clip(py, || ClipModel::random(&cfg, seed, &opts))?;
        Ok(Model { inner })
    }

    #[pyo3(signature = (items, *, batch_size=None, normalize=true))]
    fn embed_images<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyAny>,
        batch_size: Option<usize>,
        normalize: bool,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let objs = inputs::sequence(items, "images")?;
        let items = Self::items(&objs)?;
        let f = self.images(py, &items, self.batch(batch_size)?)?;
        features_array(py, f, normalize)
    }

    #[pyo3(signature = (texts, *, truncate=false, batch_size=None, normalize=true))]
    fn embed_texts<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        truncate: bool,
        batch_size: Option<usize>,
        normalize: bool,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let texts = inputs::texts(texts)?;
        non_empty(&texts, "texts")?;
        let batch = self.batch(batch_size)?;
        let f = self.texts(py, &texts, batch, truncation(truncate))?;
        features_array(py, f, normalize)
    }

    #[pyo3(signature = (texts, context_length=None, *, truncate=false))]
    fn tokenize<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        context_length: Option<usize>,
        truncate: bool,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let texts = inputs::texts(texts)?;
        let ctx = context_length.unwrap_or(self.inner.config().text.max_position_embeddings);
        let tok = self.inner.tokenizer();
        let rows = run(py, || {
            self.inner
                .install(|| tok.tokenize(&texts, ctx, truncate))
                .map_err(|e| to_py(&clip::Error::Tokenizer(e)))
        })?;
        inputs::ids_array(py, rows, ctx)
    }

    fn preprocess<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray4<f32>>> {
        let objs = inputs::sequence(items, "images")?;
        let items = Self::items(&objs)?;
        let names = inputs::labels(&items, 0);
        let inputs = inputs::image_inputs(&items, &names);
        let pv = run_clip(py, || self.inner.preprocess(&inputs))?;
        inputs::pixels_array(py, pv)
    }

    /// Raw projected features of pixel values (HF's `get_image_features`).
    fn image_features<'py>(
        &self,
        py: Python<'py>,
        pixel_values: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let pv = inputs::pixel_values(pixel_values)?;
        let f = run_clip(py, || self.inner.image_features(&pv))?;
        let (n, d) = (f.rows(), f.dim());
        inputs::array2(py, f.into_vec(), n, d)
    }

    /// Raw projected features of token ids (HF's `get_text_features`).
    fn text_features<'py>(
        &self,
        py: Python<'py>,
        input_ids: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let ids = inputs::token_ids(input_ids)?;
        let f = run_clip(py, || {
            let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
            self.inner.text_features(&seqs)
        })?;
        let (n, d) = (f.rows(), f.dim());
        inputs::array2(py, f.into_vec(), n, d)
    }

    /// The vision tower with every layer's hidden states, as HF's `vision_model(...,
    /// output_hidden_states=True)` plus the projection.
    fn vision_forward<'py>(
        &self,
        py: Python<'py>,
        pixel_values: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let pv = inputs::pixel_values(pixel_values)?;
        let opts = ForwardOptions::new().with_hidden_states();
        let out = run_clip(py, || self.inner.vision_forward(&pv, opts))?;
        let n = pv.shape[0];
        let v = &self.inner.config().vision;
        let (t, c) = (v.num_positions(), v.hidden_size);
        let d = self.inner.config().projection_dim;
        let states = out
            .hidden_states
            .into_iter()
            .map(|h| inputs::array3(py, h, [n, t, c]))
            .collect::<PyResult<Vec<_>>>()?;
        let dict = PyDict::new(py);
        dict.set_item("hidden_states", pyo3::types::PyTuple::new(py, states)?)?;
        dict.set_item("pooler_output", inputs::array2(py, out.pooled, n, c)?)?;
        dict.set_item("image_features", inputs::array2(py, out.features, n, d)?)?;
        Ok(dict)
    }

    /// The text tower over every given position with every layer's hidden states, as HF's
    /// `text_model(..., output_hidden_states=True)` plus the projection.
    fn text_forward<'py>(
        &self,
        py: Python<'py>,
        input_ids: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ids = inputs::token_ids(input_ids)?;
        let opts = ForwardOptions::new()
            .with_hidden_states()
            .with_full_context();
        let out = run_clip(py, || {
            let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
            self.inner.text_forward(&seqs, opts)
        })?;
        let n = ids.len();
        let l = ids.first().map_or(0, Vec::len);
        let c = self.inner.config().text.hidden_size;
        let d = self.inner.config().projection_dim;
        let states = out
            .hidden_states
            .into_iter()
            .map(|h| inputs::array3(py, h, [n, l, c]))
            .collect::<PyResult<Vec<_>>>()?;
        let dict = PyDict::new(py);
        dict.set_item("hidden_states", pyo3::types::PyTuple::new(py, states)?)?;
        let last = inputs::array3(py, out.last_hidden_state, [n, l, c])?;
        dict.set_item("last_hidden_state", last)?;
        dict.set_item("pooler_output", inputs::array2(py, out.pooled, n, c)?)?;
        dict.set_item("text_features", inputs::array2(py, out.features, n, d)?)?;
        Ok(dict)
    }

    /// Zero-shot probabilities `(N images, L labels)`: each label in every template, the
    /// template embeddings averaged, a softmax over the labels' logits.
    #[pyo3(signature = (items, labels, templates, *, truncate=false, batch_size=None))]
    fn zero_shot<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyAny>,
        labels: &Bound<'py, PyAny>,
        templates: &Bound<'py, PyAny>,
        truncate: bool,
        batch_size: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let labels = inputs::texts(labels)?;
        let templates = inputs::texts(templates)?;
        let objs = inputs::sequence(items, "images")?;
        let items = Self::items(&objs)?;
        let batch = self.batch(batch_size)?;
        let t: Vec<&str> = templates.iter().map(String::as_str).collect();
        let m = &self.inner;
        let classifier = run_clip(py, || {
            m.zero_shot_classifier(&labels, &t, truncation(truncate))
        })?;
        let images = self.images(py, &items, batch)?.normalize();
        let probs = run_clip(py, || classifier.probs(&images))?;
        inputs::array2(py, probs, items.len(), labels.len())
    }

    /// Normalised class embeddings `(L, D)` of a zero-shot classifier.
    #[pyo3(signature = (labels, templates, *, truncate=false))]
    fn class_embeddings<'py>(
        &self,
        py: Python<'py>,
        labels: &Bound<'py, PyAny>,
        templates: &Bound<'py, PyAny>,
        truncate: bool,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let labels = inputs::texts(labels)?;
        let templates = inputs::texts(templates)?;
        let t: Vec<&str> = templates.iter().map(String::as_str).collect();
        let m = &self.inner;
        let c = run_clip(py, || {
            m.zero_shot_classifier(&labels, &t, truncation(truncate))
        })?;
        let e = c.class_embeddings();
        inputs::array2(py, e.as_slice().to_vec(), e.rows(), e.dim())
    }

    // ---- what the model is ----

    #[getter]
    fn embed_dim(&self) -> usize {
        self.inner.config().projection_dim
    }

    #[getter]
    fn image_size(&self) -> usize {
        self.inner.config().vision.image_size
    }

    #[getter]
    fn context_length(&self) -> usize {
        self.inner.config().text.max_position_embeddings
    }

    #[getter]
    fn logit_scale(&self) -> f32 {
        self.inner.logit_scale()
    }

    /// `exp(logit_scale)` computed in f32, as PyTorch does.
    #[getter]
    fn logit_scale_exp(&self) -> f32 {
        self.inner.logit_scale().exp()
    }

    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    #[getter]
    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }

    /// The kernel that multiplies bf16 weights ("convert" or "dot"), None unless bf16.
    #[getter]
    fn bf16_kernel(&self) -> Option<&'static str> {
        self.inner.bf16_kernel().map(|k| match k {
            Bf16Kernel::Dot => "dot",
            _ => "convert",
        })
    }

    #[getter]
    fn precision(&self) -> &'static str {
        match self.inner.precision() {
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
            _ => "f32",
        }
    }

    #[getter]
    fn kernels(&self) -> String {
        self.inner.kernels().to_string()
    }

    #[getter]
    fn weights_path(&self) -> Option<std::path::PathBuf> {
        self.inner.weights_path().map(std::path::Path::to_path_buf)
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "CLIPModel(weights={:?}, embed_dim={}, image_size={}, threads={}, precision={:?})",
            self.inner
                .weights_path()
                .map_or("<random>".to_string(), |p| p.display().to_string()),
            c.projection_dim,
            c.vision.image_size,
            self.inner.threads(),
            self.precision()
        )
    }
}
