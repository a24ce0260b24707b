//! The weight builder: the model code asks for tensors by logical name, relative to a prefix
//! (`vb.pp("encoder").pp("layers").pp(3).linear(c, c)`), and the builder finds them in the
//! source, checks their shapes (errors name the key as the file spells it), and packs linear
//! weights for the GEMM. candle's `VarBuilder` is the model.
//!
//! A source is a mapped weight file in some [`Format`], or seeded random values (the same
//! model code builds a random model: each request carries an [`Init`] hint that only the
//! random source reads).
//!
//! Precision: each linear weight is packed in the precision [`layer_precision`] gives its kind
//! of layer for the model's precision (int8 keeps the projections f32); a weight stored
//! quantised (I8 with `<key>_scale`) is packed as stored in int8, dequantised otherwise.
//!
//! Not here: key names of a format (`checkpoint/`), the safetensors parsing (`weights.rs`).

use crate::checkpoint::{Format, Stored};
use crate::layers::LayerNorm;
use crate::weights::WeightFile;
use crate::{Error, Result};
use clip_tensor::{DType, Exec, Linear, Precision, Tensor};
use std::fmt::Display;
use std::sync::Mutex;

/// Where the model's tensors come from.
pub(crate) enum Source {
    /// A weight file whose keys follow `format`; with `int8`, the logical names of the
    /// linear weights packed in int8 are also kept there (what `clip quantize` writes).
    File {
        wf: WeightFile,
        format: Format,
        int8: Option<Mutex<Vec<String>>>,
    },
    /// Seeded random values, the same for a name whatever order tensors are asked in; with
    /// `record`, every tensor made is also kept there (to write a weight file).
    Random {
        seed: u64,
        record: Option<Mutex<Vec<Recorded>>>,
    },
}

/// A tensor made by the random source: its logical name, shape and values.
pub(crate) type Recorded = (String, Vec<usize>, Vec<f32>);

/// How the random source fills a tensor (a file source ignores it).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Init {
    /// Uniform with mean 0 and this standard deviation.
    Std(f32),
    /// Uniform with this mean and standard deviation.
    Around(f32, f32),
    /// Every element this value.
    Const(f32),
}

impl Source {
    /// The logical shape of `name`, if the source has it (random sources have none: their
    /// configuration is given).
    pub(crate) fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let Source::File { wf, format, .. } = self else {
            return None;
        };
        match format.resolve(name) {
            Stored::Key(k) => wf.shape(&k).map(<[usize]>::to_vec),
            Stored::Transposed(k) => wf.shape(&k).map(|s| s.iter().rev().copied().collect()),
            Stored::Stacked(parts) => {
                let shapes: Option<Vec<&[usize]>> = parts.iter().map(|k| wf.shape(k)).collect();
                let shapes = shapes?;
                let first = shapes.first()?;
                if first.is_empty() || shapes.iter().any(|s| s != first) {
                    return None;
                }
                let mut s = first.to_vec();
                s[0] *= shapes.len();
                Some(s)
            }
        }
    }

    /// The file's path (or a placeholder for random weights), for messages.
    pub(crate) fn path(&self) -> std::path::PathBuf {
        match self {
            Source::File { wf, .. } => wf.path().to_path_buf(),
            Source::Random { .. } => "<random weights>".into(),
        }
    }

    /// The key that holds `name` (the first of its parts, when stacked), for messages.
    pub(crate) fn key_for(&self, name: &str) -> String {
        match self {
            Source::Random { .. } => name.to_string(),
            Source::File { format, .. } => match format.resolve(name) {
                Stored::Key(k) | Stored::Transposed(k) => k,
                Stored::Stacked(parts) => parts.into_iter().next().unwrap_or_default(),
            },
        }
    }

    /// The tensor `name`, which must have the logical shape `shape`.
    fn tensor(&self, name: &str, shape: &[usize], init: Init) -> Result<Tensor> {
        match self {
            Source::Random { seed, record } => {
                let data = random(*seed, name, shape, init);
                if let Some(Ok(mut r)) = record.as_ref().map(Mutex::lock) {
                    r.push((name.to_string(), shape.to_vec(), data.clone()));
                }
                Ok(Tensor::from_vec(data, shape)?)
            }
            Source::File { wf, format, .. } => match format.resolve(name) {
                Stored::Key(k) => wf.get(&k, shape),
                Stored::Transposed(k) => {
                    let rev: Vec<usize> = shape.iter().rev().copied().collect();
                    Ok(wf.get(&k, &rev)?.transpose(0, 1)?)
                }
                Stored::Stacked(parts) => {
                    let part = part_shape(shape, parts.len(), &parts[0])?;
                    let mut data = Vec::new();
                    for k in &parts {
                        data.extend(wf.get(k, &part)?.to_vec_f32());
                    }
                    Ok(Tensor::from_vec(data, shape)?)
                }
            },
        }
    }

    /// The parts of a stacked tensor, each checked against its share of `shape`; `None` when
    /// `name` is not stored stacked.
    fn parts(&self, name: &str, shape: &[usize]) -> Result<Option<Vec<Tensor>>> {
        let Source::File { wf, format, .. } = self else {
            return Ok(None);
        };
        let Stored::Stacked(parts) = format.resolve(name) else {
            return Ok(None);
        };
        let part = part_shape(shape, parts.len(), &parts[0])?;
        parts
            .iter()
            .map(|k| wf.get(k, &part))
            .collect::<Result<_>>()
            .map(Some)
    }

    /// Notes that the linear weight `name` is packed in int8 (for a recording file source).
    fn record_int8(&self, name: &str) {
        if let Source::File {
            int8: Some(names), ..
        } = self
        {
            if let Ok(mut n) = names.lock() {
                n.push(name.to_string());
            }
        }
    }

    /// Tells the OS the mapped pages of `name` are no longer needed (after packing).
    fn release(&self, name: &str) {
        if let Source::File { wf, format, .. } = self {
            match format.resolve(name) {
                Stored::Key(k) | Stored::Transposed(k) => wf.release(&k),
                Stored::Stacked(parts) => parts.iter().for_each(|k| wf.release(k)),
            }
        }
    }
}

/// A linear weight as its source holds it.
pub(crate) enum Weight {
    /// Float values (any dtype), packed in the layer's precision.
    Float(Tensor),
    /// Quantised: i8 `[out, in]` values and their `out` scales.
    Int8(Tensor, Vec<f32>),
}

impl Weight {
    /// The same weight with another shape (a convolution's `[C, 3, P, P]` as `[C, 3*P*P]`).
    pub(crate) fn reshape(self, shape: &[usize]) -> Result<Weight> {
        Ok(match self {
            Weight::Float(t) => Weight::Float(t.reshape(shape)?),
            Weight::Int8(t, s) => Weight::Int8(t.reshape(shape)?, s),
        })
    }
}

impl Source {
    /// The linear weight `name` of logical shape `shape` (`[out, in]`): float, or quantised
    /// with its checked scales. Stacked parts are joined (a quantised part's rows and scales
    /// are concatenated; float parts come back as `Ok(None)`, for `Linear::stacked`).
    fn weight(&self, name: &str, shape: &[usize], init: Init) -> Result<Option<Weight>> {
        let Source::File { wf, format, .. } = self else {
            return Ok(Some(Weight::Float(self.tensor(name, shape, init)?)));
        };
        match format.resolve(name) {
            Stored::Key(k) if wf.dtype_of(&k) == Some(DType::I8) => {
                let q = wf.get(&k, shape)?;
                Ok(Some(Weight::Int8(q, self.scales(wf, &k, shape[0])?)))
            }
            Stored::Transposed(k) if wf.dtype_of(&k) == Some(DType::I8) => {
                Err(Error::InvalidWeights {
                    path: wf.path().to_path_buf(),
                    reason: format!(
                        "{k}: a quantised weight must be stored [out, in], not transposed"
                    ),
                })
            }
            Stored::Stacked(parts) if parts.iter().any(|k| wf.dtype_of(k) == Some(DType::I8)) => {
                let part = part_shape(shape, parts.len(), &parts[0])?;
                let (mut q, mut scales) = (Vec::new(), Vec::new());
                for k in &parts {
                    if wf.dtype_of(k) != Some(DType::I8) {
                        return Err(Error::InvalidWeights {
                            path: wf.path().to_path_buf(),
                            reason: format!(
                                "{k} is not quantised but {} is: the parts of one weight must be \
                                 stored alike",
                                parts
                                    .iter()
                                    .find(|k| wf.dtype_of(k) == Some(DType::I8))
                                    .map_or("", |s| s)
                            ),
                        });
                    }
                    let t = wf.get(k, &part)?;
                    q.extend(t.to_vec_f32().into_iter().map(|v| v as i8));
                    scales.extend(self.scales(wf, k, part[0])?);
                }
                Ok(Some(Weight::Int8(Tensor::from_i8(q, shape)?, scales)))
            }
            Stored::Stacked(_) => Ok(None),
            _ => Ok(Some(Weight::Float(self.tensor(name, shape, init)?))),
        }
    }

    /// The `out` scales of the quantised weight `key`, stored as `<key>_scale`: F32, shape
    /// `[out]`, every value finite and positive.
    fn scales(&self, wf: &WeightFile, key: &str, out: usize) -> Result<Vec<f32>> {
        let skey = format!("{key}_scale");
        let t = wf.get(&skey, &[out])?;
        if t.dtype() != DType::F32 {
            return Err(Error::WrongDType {
                key: skey,
                expected: "F32 (a quantisation scale)",
                found: t.dtype().safetensors_name().to_string(),
            });
        }
        let v = t.to_vec_f32();
        if let Some((i, x)) = v
            .iter()
            .enumerate()
            .find(|(_, x)| !(x.is_finite() && **x > 0.0))
        {
            return Err(Error::InvalidWeights {
                path: wf.path().to_path_buf(),
                reason: format!(
                    "{skey}[{i}] = {x}: a quantisation scale must be finite and positive"
                ),
            });
        }
        Ok(v)
    }
}

/// The kinds of linear layer whose precision can differ from the model's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layer {
    /// q/k/v, output projection and MLP of each encoder layer: 97 % of the FLOP.
    Encoder,
    /// The vision tower's patch convolution (5 % of the image FLOP).
    PatchEmbedding,
    /// The final projections to the embedding space (one row per input).
    Projection,
}

/// The precision of a kind of layer in a model loaded in `p`. int8 keeps the projections in
/// f32: they run on one row per input (no time to save) and their error reaches the
/// embeddings undiluted; the patch embedding runs in int8 (measured: `docs/numerics.md`).
pub(crate) fn layer_precision(p: Precision, layer: Layer) -> Precision {
    match (p, layer) {
        (Precision::Int8, Layer::Projection) => Precision::F32,
        (p, _) => p,
    }
}

/// The shape of one of `n` equal parts of `shape` along dimension 0.
fn part_shape(shape: &[usize], n: usize, first_key: &str) -> Result<Vec<usize>> {
    match shape.split_first() {
        Some((&rows, rest)) if n > 0 && rows.is_multiple_of(n) => {
            let mut s = vec![rows / n];
            s.extend_from_slice(rest);
            Ok(s)
        }
        _ => Err(Error::WrongShape {
            key: first_key.to_string(),
            expected: shape.to_vec(),
            found: vec![],
        }),
    }
}

/// A view of a [`Source`] at a prefix of logical names, with the precision and execution
/// context linear weights are packed with.
pub(crate) struct Vb<'a> {
    src: &'a Source,
    prefix: String,
    /// The model's precision.
    model: Precision,
    /// This view's layers' precision ([`layer_precision`]).
    precision: Precision,
    exec: &'a Exec,
}

impl<'a> Vb<'a> {
    /// The root view (no prefix).
    pub(crate) fn new(src: &'a Source, precision: Precision, exec: &'a Exec) -> Vb<'a> {
        Vb {
            src,
            prefix: String::new(),
            model: precision,
            precision: layer_precision(precision, Layer::Encoder),
            exec,
        }
    }

    /// The same view for a kind of layer whose precision may differ ([`layer_precision`]).
    pub(crate) fn layer(&self, layer: Layer) -> Vb<'a> {
        Vb {
            src: self.src,
            prefix: self.prefix.clone(),
            model: self.model,
            precision: layer_precision(self.model, layer),
            exec: self.exec,
        }
    }

    /// The view at `prefix.name`.
    pub(crate) fn pp(&self, name: impl Display) -> Vb<'a> {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        Vb {
            src: self.src,
            prefix,
            model: self.model,
            precision: self.precision,
            exec: self.exec,
        }
    }

    fn name(&self, leaf: &str) -> String {
        if self.prefix.is_empty() {
            leaf.to_string()
        } else {
            format!("{}.{leaf}", self.prefix)
        }
    }

    /// The tensor `leaf` of shape `shape`, in the file's float dtype (may stay
    /// memory-mapped); quantised (I8) values are refused here: only linear weights may be.
    pub(crate) fn tensor(&self, leaf: &str, shape: &[usize], init: Init) -> Result<Tensor> {
        let name = self.name(leaf);
        let t = self.src.tensor(&name, shape, init)?;
        if t.dtype() == DType::I8 {
            return Err(Error::WrongDType {
                key: self.src.key_for(&name),
                expected: "F32, F16 or BF16 (only linear weights may be quantised)",
                found: "I8".into(),
            });
        }
        Ok(t)
    }

    /// The linear weight `leaf` of shape `shape`, float or quantised with its scales.
    pub(crate) fn weight(&self, leaf: &str, shape: &[usize], init: Init) -> Result<Weight> {
        let name = self.name(leaf);
        match self.src.weight(&name, shape, init)? {
            Some(w) => Ok(w),
            // Stacked float parts, joined.
            None => Ok(Weight::Float(self.src.tensor(&name, shape, init)?)),
        }
    }

    /// An f32 copy of the tensor `leaf` of shape `shape`.
    pub(crate) fn vec(&self, leaf: &str, shape: &[usize], init: Init) -> Result<Vec<f32>> {
        Ok(self.tensor(leaf, shape, init)?.to_vec_f32())
    }

    /// `weight` (`[out, in]`) and `bias` (`[out]`) packed as a [`Linear`].
    pub(crate) fn linear(&self, out: usize, inp: usize) -> Result<Linear> {
        self.linear_with(out, inp, true)
    }

    /// `weight` (`[out, in]`) packed as a [`Linear`] without a bias.
    pub(crate) fn linear_no_bias(&self, out: usize, inp: usize) -> Result<Linear> {
        self.linear_with(out, inp, false)
    }

    fn linear_with(&self, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let name = self.name("weight");
        let shape = [out, inp];
        let init = Init::Std(1.0 / (inp.max(1) as f32).sqrt());
        // The weight is checked first, so a size mismatch is reported on it.
        let weight = self.src.weight(&name, &shape, init)?;
        let parts = match weight {
            Some(_) => None,
            None => self.src.parts(&name, &shape)?,
        };
        let bias = match bias {
            true => Some(self.vec("bias", &[out], Init::Std(0.05))?),
            false => None,
        };
        let lin = match (weight, parts) {
            (Some(w), _) => self.pack_with(w, bias)?,
            (None, Some(parts)) => {
                let refs: Vec<&Tensor> = parts.iter().collect();
                Linear::stacked(&refs, bias, self.float_precision(), self.exec)?
            }
            (None, None) => unreachable!("a weight is stored whole or in parts"),
        };
        if lin.precision() == Precision::Int8 {
            self.src.record_int8(&name);
        }
        self.src.release(&name);
        Ok(lin)
    }

    /// `weight` and `bias` scaled per output by `scale` (a layer scale folded in:
    /// `s * (x W^T + b) = x (diag(s) W)^T + s * b`), packed as a [`Linear`].
    ///
    /// In int8 these stay f32, in a source's int8 load and in its pre-quantised file alike
    /// (the quantiser stores them as read).
    pub(crate) fn linear_scaled(&self, out: usize, inp: usize, scale: &[f32]) -> Result<Linear> {
        let name = self.name("weight");
        let init = Init::Std(1.0 / (inp.max(1) as f32).sqrt());
        let mut w = self.src.tensor(&name, &[out, inp], init)?.to_vec_f32();
        let mut bias = self.vec("bias", &[out], Init::Std(0.05))?;
        for ((row, b), &s) in w.chunks_exact_mut(inp.max(1)).zip(&mut bias).zip(scale) {
            row.iter_mut().for_each(|v| *v *= s);
            *b *= s;
        }
        let lin = Linear::new(
            &Tensor::from_vec(w, &[out, inp])?,
            Some(bias),
            match self.precision {
                Precision::Int8 => Precision::F32,
                p => p,
            },
            self.exec,
        )?;
        self.src.release(&name);
        Ok(lin)
    }

    /// The precision a float-stored weight is packed in: this view's, except that a quantised
    /// file's float linear weights stay f32 in int8 (its quantiser chose to keep them wide).
    fn float_precision(&self) -> Precision {
        match (&self.src, self.precision) {
            (Source::File { wf, .. }, Precision::Int8) if wf.is_quantized() => Precision::F32,
            (_, p) => p,
        }
    }

    /// Packs `w` in this view's precision: a quantised weight as stored in int8, dequantised
    /// (`scale * q`, rounded to f32) in f32 or bf16.
    fn pack_with(&self, w: Weight, bias: Option<Vec<f32>>) -> Result<Linear> {
        Ok(match (w, self.precision) {
            (Weight::Float(t), _) => Linear::new(&t, bias, self.float_precision(), self.exec)?,
            (Weight::Int8(q, s), Precision::Int8) => Linear::from_int8(&q, &s, bias, self.exec)?,
            (Weight::Int8(q, s), p) => {
                let inp = q.shape()[1];
                let mut v = q.to_vec_f32();
                for (row, &sc) in v.chunks_mut(inp.max(1)).zip(&s) {
                    row.iter_mut().for_each(|x| *x *= sc);
                }
                Linear::new(&Tensor::from_vec(v, q.shape())?, bias, p, self.exec)?
            }
        })
    }

    /// Packs a weight the caller read and reshaped itself (a convolution as a GEMM), then
    /// releases the mapped pages of `leaf`.
    pub(crate) fn pack(&self, leaf: &str, weight: Weight) -> Result<Linear> {
        let lin = self.pack_with(weight, None)?;
        if lin.precision() == Precision::Int8 {
            self.src.record_int8(&self.name(leaf));
        }
        self.src.release(&self.name(leaf));
        Ok(lin)
    }

    /// `weight` and `bias` (both `[width]`) as a layer norm.
    pub(crate) fn layer_norm(&self, width: usize, eps: f32) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: self.vec("weight", &[width], Init::Around(1.0, 0.1))?,
            bias: self.vec("bias", &[width], Init::Std(0.1))?,
            eps,
        })
    }
}

/// FNV-1a of a name: each tensor's random stream depends on its name, not on load order.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seeded values for the tensor `name` of `shape`: uniform, so that the given standard
/// deviation holds (`[-s*sqrt3, s*sqrt3)`).
fn random(seed: u64, name: &str, shape: &[usize], init: Init) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let mut state = mix(seed ^ name_hash(name));
    let mut uniform = |std: f32| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let u = (mix(state) >> 40) as f32 / (1u64 << 24) as f32;
        (u * 2.0 - 1.0) * std * 3f32.sqrt()
    };
    (0..n)
        .map(|_| match init {
            Init::Std(s) => uniform(s),
            Init::Around(m, s) => m + uniform(s),
            Init::Const(c) => c,
        })
        .collect()
}
