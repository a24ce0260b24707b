//! `Linear`: a layer's weight packed once for the GEMM (in f32, bf16 or int8), and its bias:
//! `y = act(x W^T + b)`, optionally added to `y` (a fused residual).
//!
//! Built from a `[out, in]` tensor view of any float dtype and strides with [`Linear::new`]
//! (an OpenAI `[in, out]` projection is passed as its transposed view), plus the stacked form
//! [`Linear::stacked`] (separate q, k, v weights packed as one); a weight stored already
//! quantised (i8 and its scales) with [`Linear::from_int8`]. Not here: the GEMM itself
//! (`clip-kernels`), where the weights come from (the `clip` crate's loader).

use crate::{DType, Error, Exec, Result, Tensor};
pub use clip_kernels::Precision;
use clip_kernels::{Activation, Epilogue, MatMut, MatRef, PackedB};

/// A Linear layer's weight pre-packed for the GEMM, and its bias.
#[derive(Clone, Debug)]
pub struct Linear {
    packed: PackedB,
    bias: Option<Vec<f32>>,
}

impl Linear {
    /// Packs `weight` (a `[out, in]` view, as PyTorch stores a `Linear.weight`; any float
    /// dtype and strides) in `precision`; `bias` is `[out]`. In bf16, a bf16 tensor is packed
    /// from its bits as stored and an f16 one rounded from its bits (no f32 copy); an f32 one
    /// is rounded. In f32, an f32 tensor (owned or memory-mapped) is packed in place. In int8,
    /// each output channel is quantised (symmetric, `max|w| / 127`; `clip-kernels`'
    /// `gemm/int8.rs`). An i8 tensor is refused: its scales are needed
    /// ([`Linear::from_int8`]).
    pub fn new(
        weight: &Tensor,
        bias: Option<Vec<f32>>,
        precision: Precision,
        exec: &Exec,
    ) -> Result<Linear> {
        if weight.rank() != 2 {
            return Err(Error::BadShape {
                op: "Linear::new",
                shape: weight.shape().to_vec(),
                reason: "weight must be [out, in]".into(),
            });
        }
        let (out, inp) = (weight.shape()[0], weight.shape()[1]);
        check_bias(bias.as_deref(), out)?;
        refuse_i8("Linear::new", weight)?;
        let isa = exec.isa();
        if precision == Precision::Bf16 {
            if let Some((bits, dtype)) = weight.storage_bits16() {
                // B = W^T: B(i, o) = W(o, i) at o*s0 + i*s1 of the view's storage.
                let s = weight.strides();
                let (rs, cs) = (s[1], s[0]);
                let packed = exec.install(|| match dtype {
                    DType::BF16 => PackedB::from_bf16_bits(isa, bits, inp, out, rs, cs),
                    _ => PackedB::from_f16_bits(isa, bits, inp, out, rs, cs),
                });
                let packed = packed.with_bf16_kernel(exec.bf16_kernel());
                return Ok(Linear { packed, bias });
            }
        }
        let w = f32_view(weight)?;
        let (data, [s0, s1]) = w.strided_f32()?;
        let b = MatRef::strided(data, out, inp, s0, s1).t();
        let packed = exec.install(|| match precision {
            Precision::F32 => PackedB::new(isa, b),
            Precision::Bf16 => PackedB::new_bf16(isa, b).with_bf16_kernel(exec.bf16_kernel()),
            Precision::Int8 => PackedB::new_int8(isa, b),
        });
        Ok(Linear { packed, bias })
    }

    /// Packs a weight stored quantised: `weight` holds the `[out, in]` i8 values (any
    /// strides; memory-mapped ones are read in place) and `scale` the `out` per-channel
    /// scales, so `W[o][i] ~= scale[o] * weight[o][i]`. Multiplied by the int8 kernels, exactly
    /// as [`Linear::new`] in int8 would multiply the weight it quantised to the same values.
    /// The caller checks the scales' values (finite, positive); their count is checked here.
    pub fn from_int8(
        weight: &Tensor,
        scale: &[f32],
        bias: Option<Vec<f32>>,
        exec: &Exec,
    ) -> Result<Linear> {
        let (q, out, inp) = match (weight.rank(), weight.storage_i8()) {
            (2, Some(q)) => (q, weight.shape()[0], weight.shape()[1]),
            (2, None) => {
                return Err(Error::DType {
                    op: "Linear::from_int8",
                    expected: DType::I8,
                    found: weight.dtype(),
                })
            }
            _ => {
                return Err(Error::BadShape {
                    op: "Linear::from_int8",
                    shape: weight.shape().to_vec(),
                    reason: "weight must be [out, in]".into(),
                })
            }
        };
        if scale.len() != out {
            return Err(Error::ShapeMismatch {
                op: "Linear::from_int8 (scales)",
                expected: vec![out],
                found: vec![scale.len()],
            });
        }
        check_bias(bias.as_deref(), out)?;
        let s = weight.strides();
        let isa = exec.isa();
        let packed = exec.install(|| PackedB::from_int8(isa, q, scale, inp, out, s[1], s[0]));
        Ok(Linear { packed, bias })
    }

    /// Packs several `[out_i, in]` weights stacked along `out` (e.g. separate q, k and v
    /// projections as one `[3C, C]` weight) as [`Linear::new`] would pack their
    /// concatenation, without making it: f32 tensors are packed in place, others converted
    /// to f32 one at a time. `bias` is `[sum of out_i]`.
    pub fn stacked(
        weights: &[&Tensor],
        bias: Option<Vec<f32>>,
        precision: Precision,
        exec: &Exec,
    ) -> Result<Linear> {
        let inp = weights
            .first()
            .map_or(0, |w| w.shape().get(1).copied().unwrap_or(0));
        for w in weights {
            if w.rank() != 2 || w.shape()[1] != inp {
                return Err(Error::BadShape {
                    op: "Linear::stacked",
                    shape: w.shape().to_vec(),
                    reason: format!("each weight must be [out, {inp}]"),
                });
            }
        }
        let out = weights.iter().map(|w| w.shape()[0]).sum();
        check_bias(bias.as_deref(), out)?;
        for w in weights {
            refuse_i8("Linear::stacked", w)?;
        }
        let f32s = weights
            .iter()
            .map(|w| f32_view(w))
            .collect::<Result<Vec<Tensor>>>()?;
        let parts = f32s
            .iter()
            .map(|w| {
                let (data, [s0, s1]) = w.strided_f32()?;
                Ok(MatRef::strided(data, w.shape()[0], inp, s0, s1).t())
            })
            .collect::<Result<Vec<MatRef<'_>>>>()?;
        let isa = exec.isa();
        let packed = exec.install(|| PackedB::new_stacked(isa, &parts, precision));
        let packed = match precision {
            Precision::Bf16 => packed.with_bf16_kernel(exec.bf16_kernel()),
            Precision::F32 | Precision::Int8 => packed,
        };
        Ok(Linear { packed, bias })
    }

    /// The element type of the packed weight.
    pub fn precision(&self) -> Precision {
        self.packed.precision()
    }

    /// The kind of kernel that multiplies a bf16 weight (`None` for other precisions).
    pub fn bf16_kernel(&self) -> Option<clip_kernels::Bf16Kernel> {
        self.packed.bf16_kernel()
    }

    /// `out <- act(x W^T + b)`, or with `accumulate`, `out <- out + x W^T + b` (a fused
    /// residual add; `act` must then be `None`). `x` is `[rows, in]`, `out` `[rows, out]`.
    pub fn forward_into(
        &self,
        x: &[f32],
        out: &mut [f32],
        act: Activation,
        accumulate: bool,
        exec: &Exec,
    ) {
        let k = self.in_features();
        let rows = x.len().checked_div(k).unwrap_or(0);
        let epi = Epilogue::bias_act(self.bias.as_deref(), act);
        let beta = if accumulate { 1.0 } else { 0.0 };
        exec.install(|| {
            clip_kernels::sgemm_prepacked(
                1.0,
                MatRef::row_major(x, rows, k),
                &self.packed,
                beta,
                MatMut::row_major(out, rows, self.out_features()),
                epi,
            )
        });
    }

    /// Bytes held by the packed weight.
    pub fn size_bytes(&self) -> usize {
        self.packed.size_bytes()
    }

    /// Columns of `x` (the weight's `in`).
    pub fn in_features(&self) -> usize {
        self.packed.k()
    }

    /// Columns of the output (the weight's `out`).
    pub fn out_features(&self) -> usize {
        self.packed.n()
    }
}

/// The tensor itself when it is f32 (any strides), else a contiguous f32 copy.
fn f32_view(w: &Tensor) -> Result<Tensor> {
    if w.dtype() == DType::F32 {
        Ok(w.clone())
    } else {
        w.to_f32()
    }
}

/// An i8 tensor holds a quantised weight's integers, meaningless without their scales.
fn refuse_i8(op: &'static str, w: &Tensor) -> Result<()> {
    match w.dtype() {
        DType::I8 => Err(Error::DType {
            op,
            expected: DType::F32,
            found: DType::I8,
        }),
        _ => Ok(()),
    }
}

/// `Linear`'s bias, if any, has one value per output.
fn check_bias(bias: Option<&[f32]>, out: usize) -> Result<()> {
    match bias {
        Some(b) if b.len() != out => Err(Error::ShapeMismatch {
            op: "Linear (bias)",
            expected: vec![out],
            found: vec![b.len()],
        }),
        _ => Ok(()),
    }
}
