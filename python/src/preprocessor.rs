//! The native `Preprocessor`: CLIP's image preprocessing on its own (decode, convert to RGB,
//! resize the shortest edge, center crop, normalise), bit-exact with Pillow +
//! `CLIPImageProcessor`, run in parallel on its own thread pool with the GIL released.
//!
//! Not here: a model's preprocessing (`CLIPModel.preprocess` uses the model's settings and
//! threads), PIL images (the Python wrapper converts them).

use crate::errors::{clip_err, run};
use crate::inputs;
use clip::image::{AlphaMode, PreprocessConfig, ResizeTarget};
use numpy::PyArray4;
use pyo3::prelude::*;
use std::sync::Arc;

#[pyclass(frozen, name = "Preprocessor", module = "clip_rs._native")]
pub struct Preprocessor {
    inner: clip::Preprocessor,
    pool: Arc<rayon::ThreadPool>,
}

/// A pool of `threads` threads (0 = one per core), bounded as a model's is.
fn pool(threads: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    if threads > clip::max_threads() {
        return Err(clip_err(format!(
            "{threads} threads: at most {} on this machine",
            clip::max_threads()
        )));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map(Arc::new)
        .map_err(|e| clip_err(e.to_string()))
}

fn image_err(e: clip::image::Error) -> PyErr {
    crate::errors::to_py(&clip::Error::Image(e))
}

#[pymethods]
impl Preprocessor {
    /// CLIP's settings by default (shortest edge 224, crop 224 x 224, OpenAI's mean and std).
    #[new]
    #[pyo3(signature = (shortest_edge=224, crop_size=(224, 224), *, image_mean=None,
        image_std=None, drop_alpha=false, exif_transpose=false, threads=0))]
    fn new(
        shortest_edge: usize,
        crop_size: (usize, usize),
        image_mean: Option<[f64; 3]>,
        image_std: Option<[f64; 3]>,
        drop_alpha: bool,
        exif_transpose: bool,
        threads: usize,
    ) -> PyResult<Preprocessor> {
        let mut p = clip::Preprocessor::default();
        p.config = PreprocessConfig {
            size: ResizeTarget::ShortestEdge(shortest_edge),
            crop_height: crop_size.0,
            crop_width: crop_size.1,
            image_mean: image_mean.unwrap_or(p.config.image_mean),
            image_std: image_std.unwrap_or(p.config.image_std),
            ..PreprocessConfig::default()
        };
        if drop_alpha {
            p.decode.alpha = AlphaMode::Drop;
        }
        p.decode.apply_exif_orientation = exif_transpose;
        Ok(Preprocessor {
            inner: p,
            pool: pool(threads)?,
        })
    }

    /// The settings of a model folder's `preprocessor_config.json` (CLIP's if absent).
    #[staticmethod]
    #[pyo3(signature = (folder, *, threads=0))]
    fn from_pretrained(folder: std::path::PathBuf, threads: usize) -> PyResult<Preprocessor> {
        Ok(Preprocessor {
            inner: clip::Preprocessor::from_model_dir(&folder).map_err(image_err)?,
            pool: pool(threads)?,
        })
    }

    /// Float32 `(N, 3, H, W)` pixel values of image items, preprocessed in parallel.
    fn preprocess<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray4<f32>>> {
        let objs = inputs::sequence(items, "images")?;
        if objs.is_empty() {
            return Err(clip_err("no images given: the list is empty"));
        }
        let items = objs
            .iter()
            .enumerate()
            .map(|(i, o)| inputs::item(o, i))
            .collect::<PyResult<Vec<_>>>()?;
        let names = inputs::labels(&items, 0);
        let inputs = inputs::image_inputs(&items, &names);
        let (p, pool) = (&self.inner, &self.pool);
        let pv = run(py, || {
            pool.install(|| p.preprocess_inputs(&inputs))
                .map_err(image_err)
        })?;
        inputs::pixels_array(py, pv)
    }

    #[getter]
    fn crop_size(&self) -> (usize, usize) {
        (self.inner.config.crop_height, self.inner.config.crop_width)
    }
}
