//! Python arguments to library inputs, checked while the GIL is held: image items (paths,
//! encoded bytes, uint8 `(H, W, 3)` arrays), pixel values, token ids; and library outputs
//! to NumPy arrays.
//!
//! Encoded `bytes` are borrowed, not copied (immutable, and kept alive by the caller's list
//! for the whole call); arrays are copied, since other Python threads may write to them once
//! the GIL is released.
//!
//! Not here: PIL images (converted to arrays in `clip_rs/__init__.py`), running the work
//! (`errors.rs`).

use crate::errors::clip_err;
use clip::{ImageInput, PixelValues, RgbImage};
use numpy::ndarray::{Array2, Array3, Array4};
use numpy::{IntoPyArray, PyArray2, PyArray3, PyArray4, PyArrayDescrMethods, PyUntypedArray};
use numpy::{PyReadonlyArray2, PyReadonlyArray3, PyReadonlyArray4, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString, PyTuple};
use std::path::PathBuf;

/// One image item as the library will read it; `bytes` borrowed from a Python `bytes`.
pub enum Item<'a> {
    Path(PathBuf),
    Bytes(&'a [u8]),
    Owned(Vec<u8>),
    Rgb(RgbImage),
}

/// The elements of a list or tuple of items (a lone string is refused: it is one path, not a
/// list of them).
pub fn sequence<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "give a list of {what}, e.g. [x], not a single one"
        )));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return Ok(l.iter().collect());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return Ok(t.iter().collect());
    }
    obj.try_iter()
        .map_err(|_| PyTypeError::new_err(format!("give a list of {what}")))?
        .collect()
}

/// Reads image item `index`: `str` or `os.PathLike` (a file), `bytes`/`bytearray`/`memoryview`
/// (an encoded PNG or JPEG), or a uint8 array `(H, W, 3)` (RGB pixels).
pub fn item<'a>(obj: &'a Bound<'_, PyAny>, index: usize) -> PyResult<Item<'a>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Item::Bytes(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Item::Owned(b.to_vec()));
    }
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return rgb_array(a, index).map(Item::Rgb);
    }
    if obj.is_instance_of::<PyString>() || obj.hasattr("__fspath__")? {
        return Ok(Item::Path(obj.extract::<PathBuf>()?));
    }
    if let Ok(m) = obj.cast::<pyo3::types::PyMemoryView>() {
        let bytes: Vec<u8> = m.call_method0("tobytes")?.extract()?;
        return Ok(Item::Owned(bytes));
    }
    Err(PyTypeError::new_err(format!(
        "image {index}: {} is not an image; give a path (str or os.PathLike), encoded bytes, \
         a uint8 array (H, W, 3) or a PIL image",
        obj.get_type().name()?
    )))
}

/// A copy of a uint8 `(H, W, 3)` array as RGB pixels.
fn rgb_array(a: &Bound<'_, PyUntypedArray>, index: usize) -> PyResult<RgbImage> {
    let dtype = a.dtype().str()?.to_string();
    let shape = a.shape().to_vec();
    if !a.dtype().is_equiv_to(&numpy::dtype::<u8>(a.py())) {
        return Err(clip_err(format!(
            "image {index}: an array of dtype {dtype}; give uint8 RGB pixels of shape (H, W, 3)"
        )));
    }
    if shape.len() != 3 || shape[2] != 3 || shape[0] == 0 || shape[1] == 0 {
        return Err(clip_err(format!(
            "image {index}: an array of shape {shape:?}; give uint8 RGB pixels of shape \
             (H, W, 3), H and W at least 1"
        )));
    }
    let arr: PyReadonlyArray3<u8> = a.extract()?;
    let view = arr.as_array();
    let data = match view.as_slice() {
        Some(s) => s.to_vec(),
        None => view.iter().copied().collect(),
    };
    RgbImage::new(shape[1], shape[0], data)
        .ok_or_else(|| clip_err(format!("image {index}: array size overflows")))
}

/// The names errors give items that are not files: `image 3` is the call's fourth item.
pub fn labels(items: &[Item<'_>], offset: usize) -> Vec<String> {
    (0..items.len())
        .map(|i| format!("image {}", offset + i))
        .collect()
}

/// The library's view of `items`, labelled by `names` (from [`labels`]).
pub fn image_inputs<'a>(items: &'a [Item<'_>], names: &'a [String]) -> Vec<ImageInput<'a>> {
    items
        .iter()
        .zip(names)
        .map(|(it, name)| match it {
            Item::Path(p) => ImageInput::Path(p),
            Item::Bytes(b) => ImageInput::Bytes { bytes: b, name },
            Item::Owned(b) => ImageInput::Bytes { bytes: b, name },
            Item::Rgb(img) => ImageInput::Rgb(img),
        })
        .collect()
}

/// A float32 `(N, 3, H, W)` array as pixel values (copied).
pub fn pixel_values(obj: &Bound<'_, PyAny>) -> PyResult<PixelValues> {
    let a = obj
        .cast::<PyUntypedArray>()
        .map_err(|_| clip_err("pixel_values: give a float32 NumPy array (N, 3, H, W)"))?;
    if !a.dtype().is_equiv_to(&numpy::dtype::<f32>(a.py())) || a.ndim() != 4 {
        return Err(clip_err(format!(
            "pixel_values: an array of dtype {} and shape {:?}; give float32 (N, 3, H, W)",
            a.dtype().str()?,
            a.shape()
        )));
    }
    let arr: PyReadonlyArray4<f32> = a.extract()?;
    let view = arr.as_array();
    let s = view.shape();
    Ok(PixelValues {
        shape: [s[0], s[1], s[2], s[3]],
        data: view.iter().copied().collect(),
    })
}

/// An integer `(N, L)` array of token ids (as `clip.tokenize` gives them) as id rows.
pub fn token_ids(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u32>>> {
    let arr: PyReadonlyArray2<i64> = obj.extract().map_err(|_| {
        clip_err("input_ids: give an int64 NumPy array (N, L) of token ids, as tokenize gives")
    })?;
    let view = arr.as_array();
    view.rows()
        .into_iter()
        .enumerate()
        .map(|(r, row)| {
            row.iter()
                .map(|&id| {
                    u32::try_from(id).map_err(|_| {
                        clip_err(format!("input_ids: row {r} holds {id}, not a token id"))
                    })
                })
                .collect()
        })
        .collect()
}

/// `[rows, cols]` row-major values as a 2-D array (no copy).
pub fn array2<'py, T: numpy::Element>(
    py: Python<'py>,
    data: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let a = Array2::from_shape_vec((rows, cols), data).map_err(|e| clip_err(e.to_string()))?;
    Ok(a.into_pyarray(py))
}

/// `[a, b, c]` row-major values as a 3-D array (no copy).
pub fn array3<'py>(
    py: Python<'py>,
    data: Vec<f32>,
    shape: [usize; 3],
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let a = Array3::from_shape_vec(shape, data).map_err(|e| clip_err(e.to_string()))?;
    Ok(a.into_pyarray(py))
}

/// Pixel values as a float32 `(N, 3, H, W)` array (no copy).
pub fn pixels_array(py: Python<'_>, pv: PixelValues) -> PyResult<Bound<'_, PyArray4<f32>>> {
    let a = Array4::from_shape_vec(pv.shape, pv.data).map_err(|e| clip_err(e.to_string()))?;
    Ok(a.into_pyarray(py))
}

/// Token id rows (each `context` long) as an int64 `(N, context)` array.
pub fn ids_array(
    py: Python<'_>,
    rows: Vec<Vec<u32>>,
    context: usize,
) -> PyResult<Bound<'_, PyArray2<i64>>> {
    let n = rows.len();
    let flat: Vec<i64> = rows.into_iter().flatten().map(i64::from).collect();
    array2(py, flat, n, context)
}

/// Texts from a list (a lone `str` is one text, as `clip.tokenize` takes it).
pub fn texts(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(vec![s.extract::<String>()?]);
    }
    sequence(obj, "texts")?
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.extract::<String>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "text {i}: {} is not a str",
                    t.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })
        })
        .collect()
}
