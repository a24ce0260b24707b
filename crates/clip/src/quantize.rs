//! Writing a model folder pre-quantised to int8 (`clip quantize MODEL --out DIR`): the linear
//! weights that an int8 load of the model packs in int8 are stored as I8 `[out, in]` with an
//! F32 `<key>_scale` `[out]` each (symmetric per output channel: the numbers the int8 packing
//! computes at load, so the file loads to bitwise the same model, without re-quantising);
//! every other tensor is copied as stored; the header's metadata names the scheme
//! (`weights::QUANT_SCHEME`). The folder's other files (config, preprocessor, vocabulary) are
//! copied beside it.
//!
//! Which weights: the loader itself says, by recording the logical names it packs in int8
//! (`loader::layer_precision`), so this file spells no key and follows any format.
//!
//! Not here: reading quantised files back (`loader.rs`, `weights.rs`), the quantisation
//! arithmetic (`clip_kernels::gemm::quantize_weight_rows`).

use crate::checkpoint::{hf, infer, Format, Stored};
use crate::loader::Source;
use crate::model::Towers;
use crate::weights::{WeightFile, QUANT_KEY, QUANT_SCHEME};
use crate::{Error, LoadOptions, Precision, Result};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What [`quantize_model`] wrote.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct QuantizeReport {
    /// The weight file written.
    pub path: PathBuf,
    /// Tensors stored as int8 (each with its scales).
    pub quantized: usize,
    /// Tensors copied as stored.
    pub copied: usize,
    /// Bytes of the source and of the written weight file.
    pub bytes_in: u64,
    /// Bytes of the written weight file.
    pub bytes_out: u64,
}

/// Quantises the model folder `src` (a `model.safetensors` of f32, f16 or bf16, Hugging Face
/// or OpenAI names) into the folder `out` (created if needed; its `model.safetensors` is
/// replaced through a temporary file). Refuses a file that is already quantised.
pub fn quantize_model(src: impl AsRef<Path>, out: impl AsRef<Path>) -> Result<QuantizeReport> {
    let (src, out) = (src.as_ref(), out.as_ref());
    let weights = src.join("model.safetensors");
    if !weights.is_file() {
        return Err(Error::MissingFile {
            path: weights,
            what: "model.safetensors",
        });
    }
    let wf = WeightFile::open(&weights)?;
    if wf.is_quantized() {
        return Err(Error::InvalidArgument {
            reason: format!("{} is already quantised", weights.display()),
        });
    }
    let format = Format::detect(&wf).ok_or_else(|| Error::UnknownLayout {
        path: weights.clone(),
    })?;
    let source = Source::File {
        wf,
        format,
        int8: Some(Mutex::new(Vec::new())),
    };
    let config_path = src.join("config.json");
    let config = if config_path.is_file() {
        let bytes = std::fs::read(&config_path).map_err(|e| Error::Io {
            path: config_path.clone(),
            source: e,
        })?;
        hf::read_config(&bytes, &config_path)?
    } else {
        infer::from_shapes(&source, &weights)?
    };
    // The load decides which weights are int8 and checks every shape on the way.
    Towers::load(
        &source,
        &config,
        &LoadOptions::new().precision(Precision::Int8),
    )?;
    let Source::File {
        wf,
        int8: Some(names),
        ..
    } = source
    else {
        unreachable!("made as a recording file source above")
    };
    let mut keys = BTreeSet::new();
    for name in names.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match format.resolve(&name) {
            Stored::Key(k) => {
                keys.insert(k);
            }
            Stored::Stacked(parts) => keys.extend(parts),
            // (The loader refuses quantised transposed weights; none is int8 today.)
            Stored::Transposed(_) => {}
        }
    }
    let mut tensors: Vec<(String, Out<'_>)> = Vec::new();
    for key in wf.keys() {
        let (dtype, shape, bytes) = wf.raw(key).expect("listed by the file");
        if !keys.contains(key) {
            tensors.push((
                key.to_string(),
                Out::new(dtype, shape, Cow::Borrowed(bytes)),
            ));
            continue;
        }
        let values = wf.get(key, shape)?.to_vec_f32();
        let rows = shape.first().copied().unwrap_or(1);
        let cols = values.len().checked_div(rows).unwrap_or(0);
        let (q, scales) = clip_kernels::gemm::quantize_weight_rows(&values, rows, cols, cols, 1);
        let q: Vec<u8> = q.into_iter().map(|v| v as u8).collect();
        let s: Vec<u8> = scales.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((
            key.to_string(),
            Out::new(safetensors::Dtype::I8, shape, Cow::Owned(q)),
        ));
        tensors.push((
            format!("{key}_scale"),
            Out::new(safetensors::Dtype::F32, &[rows], Cow::Owned(s)),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| write_error(out, e))?;
    let path = out.join("model.safetensors");
    let tmp = out.join("model.safetensors.tmp");
    let meta = HashMap::from([(QUANT_KEY.to_string(), QUANT_SCHEME.to_string())]);
    let copied = tensors.len() - 2 * keys.len();
    safetensors::serialize_to_file(tensors, &Some(meta), &tmp).map_err(|e| write_error(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| write_error(&path, e))?;
    for entry in std::fs::read_dir(src).map_err(|e| Error::Io {
        path: src.to_path_buf(),
        source: e,
    })? {
        let from = entry
            .map_err(|e| Error::Io {
                path: src.to_path_buf(),
                source: e,
            })?
            .path();
        let name = from.file_name().unwrap_or_default();
        let side_file = from.is_file()
            && name != "model.safetensors"
            && from.extension().is_some_and(|e| e == "json" || e == "txt");
        if side_file && !same_file(&from, &out.join(name)) {
            std::fs::copy(&from, out.join(name)).map_err(|e| write_error(&out.join(name), e))?;
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    Ok(QuantizeReport {
        bytes_in: size(&weights),
        bytes_out: size(&path),
        path,
        quantized: keys.len(),
        copied,
    })
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Whether two paths name one file (quantising a folder into itself keeps its side files).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A tensor to write.
struct Out<'a> {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
}

impl<'a> Out<'a> {
    fn new(dtype: safetensors::Dtype, shape: &[usize], data: Cow<'a, [u8]>) -> Self {
        Out {
            dtype,
            shape: shape.to_vec(),
            data,
        }
    }
}

impl safetensors::View for Out<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}
