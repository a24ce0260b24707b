//! From the library's errors (and panics) to Python exceptions, and the one way the binding
//! runs library work: with the GIL released and every panic caught.
//!
//! Mapping: a file that is not there -> `FileNotFoundError` (`PermissionError`,
//! `IsADirectoryError`, `OSError` for other I/O failures); everything else the library refuses
//! (bad input, arguments, images, texts, weights, configs) -> `ClipError`, a `ValueError`; a
//! panic -> `RuntimeError`. The message is the library's one line.
//!
//! Not here: checking Python arguments (`inputs.rs`), the calls themselves (`model.rs`).

use pyo3::exceptions::{
    PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError, PyRuntimeError,
    PyValueError,
};
use pyo3::prelude::*;
use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};

pyo3::create_exception!(
    _native,
    ClipError,
    PyValueError,
    "Input, arguments or model files that clip-rs refuses (a ValueError)."
);

/// A `ClipError` with `msg`.
pub fn clip_err(msg: impl Into<String>) -> PyErr {
    ClipError::new_err(msg.into())
}

/// The exception for an I/O failure of kind `kind`, carrying `msg`.
fn io_err(kind: ErrorKind, msg: String) -> PyErr {
    match kind {
        ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
        ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
        ErrorKind::IsADirectory => PyIsADirectoryError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

/// The Python exception for a library error.
pub fn to_py(e: &clip::Error) -> PyErr {
    use clip::image::Error as Img;
    let msg = e.to_string();
    match e {
        clip::Error::Io { source, .. } | clip::Error::Image(Img::Io { source, .. }) => {
            io_err(source.kind(), msg)
        }
        clip::Error::Tokenizer(clip::TokenizerError::Io { error, .. }) => io_err(error.kind(), msg),
        clip::Error::MissingFile { .. } => PyFileNotFoundError::new_err(msg),
        clip::Error::Tokenizer(clip::TokenizerError::TooLong {
            index,
            tokens,
            context_length,
        }) => clip_err(format!(
            "text {index} is too long for context length {context_length}: it needs {tokens} \
             tokens with SOT and EOT (truncate=True cuts it, as clip.tokenize does)"
        )),
        _ => clip_err(msg),
    }
}

/// What a panic carried, as text.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs `f` with the GIL released (other Python threads run meanwhile), turning its error
/// into the fitting exception and a panic into `RuntimeError`: no panic reaches Python.
pub fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> PyResult<T> + Send) -> PyResult<T> {
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(r) => r,
        Err(p) => Err(PyRuntimeError::new_err(format!(
            "internal error in clip-rs (please report it): {}",
            panic_message(p.as_ref())
        ))),
    }
}

/// [`run`] for a closure returning the library's `Result`.
pub fn run_clip<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> clip::Result<T> + Send,
) -> PyResult<T> {
    run(py, || f().map_err(|e| to_py(&e)))
}
