//! A memory-mapped safetensors file: validated once at open, then read tensor by tensor with
//! the key, shape and dtype checked (errors name the key and the expected and found values).
//!
//! f32 tensors that are aligned in the file are used in place (no copy); f16 and bf16 are
//! converted to f32 when a layer asks for them. i8 tensors are quantised weights (written by
//! `clip quantize`): they are accepted only in a file whose metadata names the scheme
//! ([`QUANT_SCHEME`]), and only where the loader asks for a linear weight, with its scales
//! (`<key>_scale`, checked by the loader). After a weight has been packed for the GEMM,
//! [`WeightFile::release`] tells the kernel its mapped pages are no longer needed, so the
//! packed copy does not double the resident memory.
//!
//! NaN and Inf are not looked for at load (the values are the model's business);
//! [`WeightFile::non_finite`] lists the tensors that hold any, and
//! `LoadOptions::validate` makes loading refuse them.
//!
//! Bounds: the header is at most [`MAX_HEADER_BYTES`] and lists at most [`MAX_TENSORS`]
//! tensors, checked before it is parsed, so opening a hostile file costs little time and
//! memory whatever it declares.
//!
//! See [`WeightFile::open`] for what happens when a mapped file is truncated.

use crate::error::NonFinite;
use crate::{Error, Result};
use clip_tensor::{ByteStorage, DType, Tensor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The mapped bytes of a weights file.
struct Mapped(memmap2::Mmap);

impl ByteStorage for Mapped {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// One tensor's place in the file.
#[derive(Clone, Debug)]
struct Entry {
    dtype: std::result::Result<DType, String>,
    /// As the file names it (for copying a tensor as it is).
    stored: safetensors::Dtype,
    shape: Vec<usize>,
    start: usize,
    len: usize,
}

/// An open, validated safetensors file.
pub(crate) struct WeightFile {
    path: PathBuf,
    bytes: Arc<dyn ByteStorage>,
    /// The memory map, when the bytes come from a file (for `release`).
    map: Option<Arc<Mapped>>,
    entries: BTreeMap<String, Entry>,
    used: Mutex<BTreeSet<String>>,
    /// The `quantization` entry of the header's metadata, if any.
    scheme: Option<String>,
}

impl std::fmt::Debug for WeightFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WeightFile({}, {} tensors)",
            self.path.display(),
            self.entries.len()
        )
    }
}

impl WeightFile {
    /// Maps and validates `path`: the header, and every tensor's offsets against the file
    /// size and its shape x dtype (by the `safetensors` crate).
    ///
    /// # The memory-map caveat
    ///
    /// The file is memory-mapped, not read. If another process truncates it while it is
    /// mapped, a later read of a page past the new end raises SIGBUS and kills the process;
    /// no Rust code can turn that into an error. What the loader does about it:
    ///
    /// - at open, the file's size is checked against the header, so a file that is already
    ///   short is a typed [`Error::InvalidWeights`], never a fault;
    /// - while a model loads, every tensor but the token-embedding table is read once: the
    ///   linear weights are packed into owned memory (and their pages released), the others
    ///   (biases, norms, positions, patch and class embeddings) are copied;
    /// - after load, only the text token-embedding table is still read from the map (the
    ///   rows of each text's ids, at every text encoding); f16/bf16 files convert those rows
    ///   on the fly.
    ///
    /// So the exposure is load time, plus the token-embedding rows afterwards. Replace a
    /// weight file by writing a new file and renaming it over the old one (the map keeps the
    /// old file alive), never by rewriting or truncating it in place. Callers who cannot
    /// rule that out can read the file themselves and use [`WeightFile::from_bytes`].
    pub(crate) fn open(path: &Path) -> Result<WeightFile> {
        let invalid = |reason: String| Error::InvalidWeights {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let size = file
            .metadata()
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: e,
            })?
            .len();
        if size < 8 {
            return Err(invalid(format!(
                "file is {size} bytes, shorter than the 8-byte header length"
            )));
        }
        // SAFETY: the map is read-only and private to this process; the bytes are only read
        // through slices whose bounds safetensors checked against the map's length. A file
        // truncated by another process while mapped is the caveat documented on this fn.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let map = Arc::new(Mapped(map));
        let mut wf = Self::parse(path, map.clone())?;
        wf.map = Some(map);
        Ok(wf)
    }

    /// Validates safetensors bytes held in memory; `name` stands for the path in errors.
    pub(crate) fn from_bytes(name: &Path, bytes: Vec<u8>) -> Result<WeightFile> {
        Self::parse(name, Arc::new(bytes))
    }

    fn parse(path: &Path, bytes: Arc<dyn ByteStorage>) -> Result<WeightFile> {
        let invalid = |reason: String| Error::InvalidWeights {
            path: path.to_path_buf(),
            reason,
        };
        let data = bytes.bytes();
        if data.len() < 8 {
            return Err(invalid(format!(
                "file is {} bytes, shorter than the 8-byte header length",
                data.len()
            )));
        }
        let header_len = u64::from_le_bytes(data[..8].try_into().unwrap_or([0xff; 8]));
        if header_len > (data.len() - 8) as u64 {
            return Err(invalid("the header length exceeds the file".into()));
        }
        if header_len > MAX_HEADER_BYTES as u64 {
            return Err(invalid(format!(
                "the header is {header_len} bytes, more than the {MAX_HEADER_BYTES}-byte limit \
                 (a CLIP checkpoint needs well under 1 MB)"
            )));
        }
        // Each tensor's entry in the JSON names its dtype, shape and offsets: counting the
        // `data_offsets` keys bounds the tensors before the JSON is parsed.
        let header = &data[8..(8 + header_len as usize).min(data.len())];
        let declared = count(header, b"data_offsets");
        if declared > MAX_TENSORS {
            return Err(invalid(format!(
                "the header lists {declared} tensors, more than the limit of {MAX_TENSORS}"
            )));
        }
        let st = safetensors::SafeTensors::deserialize(data).map_err(|e| invalid(describe(e)))?;
        let base = data.as_ptr() as usize;
        let mut entries = BTreeMap::new();
        for (name, view) in st.tensors() {
            let dtype = match view.dtype() {
                safetensors::Dtype::F32 => Ok(DType::F32),
                safetensors::Dtype::F16 => Ok(DType::F16),
                safetensors::Dtype::BF16 => Ok(DType::BF16),
                safetensors::Dtype::I8 => Ok(DType::I8),
                other => Err(format!("{other:?}")),
            };
            let start = view.data().as_ptr() as usize - base;
            entries.insert(
                name,
                Entry {
                    dtype,
                    stored: view.dtype(),
                    shape: view.shape().to_vec(),
                    start,
                    len: view.data().len(),
                },
            );
        }
        drop(st);
        let scheme = safetensors::SafeTensors::read_metadata(data)
            .ok()
            .and_then(|(_, meta)| meta.metadata().as_ref()?.get(QUANT_KEY).cloned());
        let quantized = entries.values().any(|e| e.dtype == Ok(DType::I8));
        match scheme.as_deref() {
            Some(QUANT_SCHEME) if quantized => {}
            Some(QUANT_SCHEME) => {
                return Err(invalid(format!(
                    "the metadata names the {QUANT_SCHEME} quantisation but no tensor is I8"
                )))
            }
            Some(other) => {
                return Err(invalid(format!(
                    "unknown quantisation scheme {other:?} in the metadata (this version reads \
                     {QUANT_SCHEME})"
                )))
            }
            None if quantized => {
                return Err(invalid(format!(
                    "I8 tensors without a quantisation scheme in the metadata \
                     ({QUANT_KEY} = {QUANT_SCHEME}, as `clip quantize` writes)"
                )))
            }
            None => {}
        }
        Ok(WeightFile {
            path: path.to_path_buf(),
            bytes,
            map: None,
            entries,
            used: Mutex::new(BTreeSet::new()),
            scheme,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes.
    pub(crate) fn size(&self) -> usize {
        self.bytes.bytes().len()
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The shape of `key`, if present.
    pub(crate) fn shape(&self, key: &str) -> Option<&[usize]> {
        self.entries.get(key).map(|e| e.shape.as_slice())
    }

    /// The dtype of the first floating-point tensor (the file's precision; a quantised file
    /// keeps its other tensors in it).
    pub(crate) fn dtype(&self) -> Option<DType> {
        self.entries
            .values()
            .find_map(|e| e.dtype.clone().ok().filter(|&d| d != DType::I8))
    }

    /// Whether the file holds quantised weights (I8 tensors under [`QUANT_SCHEME`]).
    pub(crate) fn is_quantized(&self) -> bool {
        self.scheme.is_some()
    }

    /// Every tensor's key, sorted.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The dtype, shape and bytes of `key` as stored (any dtype).
    pub(crate) fn raw(&self, key: &str) -> Option<(safetensors::Dtype, &[usize], &[u8])> {
        let e = self.entries.get(key)?;
        Some((
            e.stored,
            &e.shape,
            &self.bytes.bytes()[e.start..e.start + e.len],
        ))
    }

    /// The dtype of `key`, if present and of a known type.
    pub(crate) fn dtype_of(&self, key: &str) -> Option<DType> {
        self.entries.get(key).and_then(|e| e.dtype.clone().ok())
    }

    /// The tensor `key`, which must have shape `expected` and a float dtype or I8 (the loader
    /// takes I8 for linear weights only).
    pub(crate) fn get(&self, key: &str, expected: &[usize]) -> Result<Tensor> {
        let e = self.entries.get(key).ok_or_else(|| Error::MissingTensor {
            key: key.to_string(),
        })?;
        if e.shape != expected {
            return Err(Error::WrongShape {
                key: key.to_string(),
                expected: expected.to_vec(),
                found: e.shape.clone(),
            });
        }
        let dtype = e.dtype.clone().map_err(|found| Error::WrongDType {
            key: key.to_string(),
            expected: "F32, F16, BF16 (or I8 for a quantised weight)",
            found,
        })?;
        if let Ok(mut used) = self.used.lock() {
            used.insert(key.to_string());
        }
        Ok(Tensor::from_bytes(
            self.bytes.clone(),
            e.start,
            dtype,
            expected,
        )?)
    }

    /// Tells the OS the pages of `key` are not needed any more (after packing), so they leave
    /// the resident set; a later read would fault them back in from the page cache.
    pub(crate) fn release(&self, key: &str) {
        if let (Some(e), Some(map)) = (self.entries.get(key), &self.map) {
            let page = 4096;
            let start = e.start.div_ceil(page) * page;
            let end = (e.start + e.len) / page * page;
            if end > start {
                // SAFETY: the range lies inside this read-only file mapping; MADV_DONTNEED on
                // a file-backed private read-only map only drops clean pages, which are read
                // back from the file if touched again, so no slice observes changed bytes.
                let _ = unsafe {
                    map.0.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start,
                        end - start,
                    )
                };
            }
        }
    }

    /// The float tensors that hold NaN or Inf, by name (sorted), with their counts. Reads
    /// every tensor once; the bit patterns are tested in place, so f16 and bf16 are not
    /// converted.
    pub(crate) fn non_finite(&self) -> Vec<NonFinite> {
        let data = self.bytes.bytes();
        let mut out = Vec::new();
        for (key, e) in &self.entries {
            let Ok(dtype) = &e.dtype else { continue };
            let raw = &data[e.start..e.start + e.len];
            let (mut nan, mut inf) = (0usize, 0usize);
            let mut count = |exp_all_ones: bool, mantissa_zero: bool| {
                if exp_all_ones {
                    if mantissa_zero {
                        inf += 1;
                    } else {
                        nan += 1;
                    }
                }
            };
            match dtype {
                // Integers: nothing to find (their scales are F32 tensors, checked here).
                DType::I8 => {}
                DType::F32 => raw.chunks_exact(4).for_each(|b| {
                    let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    count(v & 0x7f80_0000 == 0x7f80_0000, v & 0x007f_ffff == 0);
                }),
                DType::F16 => raw.chunks_exact(2).for_each(|b| {
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    count(v & 0x7c00 == 0x7c00, v & 0x03ff == 0);
                }),
                DType::BF16 => raw.chunks_exact(2).for_each(|b| {
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    count(v & 0x7f80 == 0x7f80, v & 0x007f == 0);
                }),
            }
            if nan + inf > 0 {
                out.push(NonFinite {
                    key: key.clone(),
                    nan,
                    inf,
                });
            }
        }
        out
    }

    /// `Err(Error::NonFiniteWeights)` naming every tensor with NaN or Inf, else `Ok`.
    pub(crate) fn check_finite(&self) -> Result<()> {
        let bad = self.non_finite();
        if bad.is_empty() {
            return Ok(());
        }
        Err(Error::NonFiniteWeights {
            path: self.path.clone(),
            tensors: bad,
        })
    }

    /// Tensors never read by the model (listed by the CLI with `CLIP_LOG=debug`).
    pub(crate) fn unused(&self) -> Vec<String> {
        let used = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        self.entries
            .keys()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect()
    }
}

/// The metadata key naming a file's quantisation scheme.
pub(crate) const QUANT_KEY: &str = "quantization";

/// The one quantisation scheme this version reads and writes: linear weights as I8 `[out, in]`
/// with an F32 `[out]` tensor `<key>_scale` each (symmetric per output channel, zero point 0:
/// `W ~= scale[o] * q[o][i]`, `|q| <= 127`).
pub(crate) const QUANT_SCHEME: &str = "clip-rs/int8-symmetric-per-output-channel/v1";

/// The header size accepted (16 MiB: bigG/14, the largest CLIP, needs about 200 KB).
pub(crate) const MAX_HEADER_BYTES: usize = 16 << 20;

/// The tensors a header may list (bigG/14 has about 1,800).
pub(crate) const MAX_TENSORS: usize = 100_000;

/// Occurrences of `needle` in `hay` (non-overlapping), in one pass.
fn count(hay: &[u8], needle: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while let Some(pos) = hay[i..].windows(needle.len()).position(|w| w == needle) {
        n += 1;
        i += pos + needle.len();
    }
    n
}

fn describe(e: safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::InvalidHeader => "the header is not valid UTF-8".into(),
        E::InvalidHeaderStart => "the header does not start with '{'".into(),
        E::InvalidHeaderDeserialization => "the header is not valid JSON".into(),
        E::HeaderTooLarge => "the header length is larger than 100 MB".into(),
        E::HeaderTooSmall => "the file is too small for its header".into(),
        E::InvalidHeaderLength => "the header length exceeds the file".into(),
        E::TensorNotFound(n) => format!("tensor {n} not found"),
        E::TensorInvalidInfo => "a tensor's offsets do not match its shape and dtype".into(),
        E::InvalidOffset(n) => {
            format!("tensor {n} has offsets out of range or overlapping another")
        }
        E::IoError(e) => format!("I/O error: {e}"),
        E::JsonError(e) => format!("header JSON: {e}"),
        E::InvalidTensorView(d, s, n) => {
            format!("a {d:?} tensor of shape {s:?} cannot have {n} bytes")
        }
        E::MetadataIncompleteBuffer => {
            "the tensors do not cover the data (truncated or padded file)".into()
        }
        E::ValidationOverflow => "a tensor's shape overflows".into(),
    }
}
