//! clip_rs._native: the Python extension module over the `clip` library (PyO3 + numpy).
//! `CLIPModel` and `Preprocessor` classes, `tokenize` with CLIP's vocabulary, the ImageNet
//! prompt templates and the `ClipError` exception. Every Rust call releases the GIL and
//! catches panics (`errors.rs`).
//!
//! Not here: the public Python API, its docstrings and PIL conversion (`clip_rs/__init__.py`),
//! anything numeric (the `clip` crate).

mod errors;
mod inputs;
mod model;
mod preprocessor;

use errors::{run, to_py};
use numpy::PyArray2;
use pyo3::prelude::*;
use std::sync::OnceLock;

/// CLIP's tokenizer (embedded vocabulary), built once: parsing the merges takes a while.
fn clip_tokenizer() -> PyResult<&'static clip::Tokenizer> {
    static TOKENIZER: OnceLock<Result<clip::Tokenizer, String>> = OnceLock::new();
    TOKENIZER
        .get_or_init(|| clip::Tokenizer::new().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| errors::clip_err(e.clone()))
}

/// `clip.tokenize`: int64 `(N, context_length)` with CLIP's vocabulary.
#[pyfunction]
#[pyo3(signature = (texts, context_length=77, truncate=false))]
fn tokenize<'py>(
    py: Python<'py>,
    texts: &Bound<'py, PyAny>,
    context_length: usize,
    truncate: bool,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let texts = inputs::texts(texts)?;
    let rows = run(py, || {
        clip_tokenizer()?
            .tokenize(&texts, context_length, truncate)
            .map_err(|e| to_py(&clip::Error::Tokenizer(e)))
    })?;
    inputs::ids_array(py, rows, context_length)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::Model>()?;
    m.add_class::<preprocessor::Preprocessor>()?;
    m.add_function(wrap_pyfunction!(tokenize, m)?)?;
    m.add("ClipError", m.py().get_type::<errors::ClipError>())?;
    m.add("IMAGENET_TEMPLATES", clip::IMAGENET_TEMPLATES.to_vec())?;
    Ok(())
}
