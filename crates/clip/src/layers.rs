//! The blocks both towers share: layer norm and the pre-LN transformer encoder layer
//! (LN, multi-head attention, residual, LN, MLP, residual), loaded by logical name through
//! the weight builder and run on the model's execution context.
//!
//! Activations are row-major `[rows, C]` buffers; several sequences of one length form a
//! [`SeqGroup`] that attention sees as `[B, T, C]`.
//! Not here: embeddings and pooling (`vision.rs`, `text.rs`), key names (`checkpoint/`).

use crate::loader::{Init, Vb};
use crate::Result;
use clip_kernels::{rows, Activation, AttentionShape};
use clip_tensor::{Exec, Linear};

/// `batch` sequences of `seq` rows each, stored one after another from row `first_row`:
/// one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeqGroup {
    pub first_row: usize,
    pub batch: usize,
    pub seq: usize,
}

impl SeqGroup {
    fn rows(&self) -> std::ops::Range<usize> {
        self.first_row..self.first_row + self.batch * self.seq
    }
}

/// `torch.nn.LayerNorm` over the last dimension.
#[derive(Clone, Debug)]
pub(crate) struct LayerNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

impl LayerNorm {
    /// `out <- LN(x)` row by row (rows in parallel).
    pub fn forward(&self, x: &[f32], out: &mut [f32], exec: &Exec) {
        let c = self.weight.len();
        exec.for_rows(x, out, c, |isa, x, o| {
            rows::layernorm_rows(isa, x, o, c, &self.weight, &self.bias, self.eps)
        });
    }
}

/// Sizes of one encoder layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LayerDims {
    pub width: usize,
    pub heads: usize,
    pub mlp: usize,
    pub eps: f32,
    pub act: Activation,
    pub causal: bool,
    /// Layer scale: `layer_scale1` / `layer_scale2` multiply the two residual branches
    /// (folded into `out_proj` and `fc2` at load).
    pub layer_scale: bool,
}

/// One pre-LN transformer block; fields named as Hugging Face's checkpoint keys.
#[derive(Debug)]
pub(crate) struct EncoderLayer {
    layer_norm1: LayerNorm,
    /// q, k and v projections as one `[3C, C]` GEMM.
    qkv_proj: Linear,
    out_proj: Linear,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    dims: LayerDims,
}

/// Scratch buffers one forward pass reuses across layers.
#[derive(Default)]
pub(crate) struct Scratch {
    h: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    mlp: Vec<f32>,
}

fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}

impl EncoderLayer {
    /// Loads the layer under `vb` (e.g. `vision_model.encoder.layers.3`).
    pub fn load(vb: &Vb<'_>, dims: LayerDims) -> Result<EncoderLayer> {
        let (c, m) = (dims.width, dims.mlp);
        let attn = vb.pp("self_attn");
        let mlp = vb.pp("mlp");
        // Read in the block's order, so a size mismatch is reported on its first tensor.
        let layer_norm1 = vb.pp("layer_norm1").layer_norm(c, dims.eps)?;
        let qkv_proj = attn.pp("qkv_proj").linear(3 * c, c)?;
        let scale = |leaf: &str| match dims.layer_scale {
            true => vb.vec(leaf, &[c], Init::Around(1.0, 0.1)).map(Some),
            false => Ok(None),
        };
        let out_proj = match scale("layer_scale1")? {
            Some(s) => attn.pp("out_proj").linear_scaled(c, c, &s)?,
            None => attn.pp("out_proj").linear(c, c)?,
        };
        let layer_norm2 = vb.pp("layer_norm2").layer_norm(c, dims.eps)?;
        let fc1 = mlp.pp("fc1").linear(m, c)?;
        let fc2 = match scale("layer_scale2")? {
            Some(s) => mlp.pp("fc2").linear_scaled(c, m, &s)?,
            None => mlp.pp("fc2").linear(c, m)?,
        };
        Ok(EncoderLayer {
            layer_norm1,
            qkv_proj,
            out_proj,
            layer_norm2,
            fc1,
            fc2,
            dims,
        })
    }

    /// Layers `0 .. count` under `vb` (e.g. `text_model.encoder.layers`).
    pub fn load_stack(vb: &Vb<'_>, count: usize, dims: LayerDims) -> Result<Vec<EncoderLayer>> {
        (0..count)
            .map(|i| EncoderLayer::load(&vb.pp(i), dims))
            .collect()
    }

    /// `x <- x + MHA(LN1(x)); x <- x + MLP(LN2(x))` in place. `x` is `[rows, C]`; `groups`
    /// cover the rows. With `after_attention`, the residual stream between the two halves is
    /// pushed there (for comparing a layer's parts with a reference).
    pub fn forward(
        &self,
        x: &mut [f32],
        groups: &[SeqGroup],
        s: &mut Scratch,
        exec: &Exec,
        after_attention: Option<&mut Vec<Vec<f32>>>,
    ) {
        self.attend(x, groups, s, exec);
        let attn = &s.attn[..x.len()];
        self.out_proj
            .forward_into(attn, x, Activation::None, true, exec);
        if let Some(a) = after_attention {
            a.push(x.to_vec());
        }
        self.mlp(x, s, exec);
    }

    /// The layer's output at the rows `keep` only, as `[keep.len(), C]`: what the last layer
    /// has to compute when only the class token (or each text's EOT token) is pooled.
    /// Attention still runs over every row (all are keys and values); the output
    /// projection and the MLP run on the kept rows. Bitwise the same rows as [`forward`]:
    /// a GEMM row does not depend on the other rows.
    ///
    /// [`forward`]: EncoderLayer::forward
    pub fn forward_rows(
        &self,
        x: &[f32],
        groups: &[SeqGroup],
        keep: &[usize],
        s: &mut Scratch,
        exec: &Exec,
    ) -> Vec<f32> {
        let c = self.dims.width;
        self.attend(x, groups, s, exec);
        let gather = |m: &[f32]| -> Vec<f32> {
            keep.iter()
                .flat_map(|&r| m[r * c..(r + 1) * c].iter().copied())
                .collect()
        };
        let attn = gather(&s.attn);
        let mut y = gather(x);
        self.out_proj
            .forward_into(&attn, &mut y, Activation::None, true, exec);
        self.mlp(&mut y, s, exec);
        y
    }

    /// `s.attn <- attention(LN1(x))`, before the output projection.
    fn attend(&self, x: &[f32], groups: &[SeqGroup], s: &mut Scratch, exec: &Exec) {
        let LayerDims {
            width: c,
            heads,
            causal,
            ..
        } = self.dims;
        let rows = x.len() / c;
        let h = sized(&mut s.h, rows * c);
        self.layer_norm1.forward(x, h, exec);
        let qkv = sized(&mut s.qkv, rows * 3 * c);
        self.qkv_proj
            .forward_into(h, qkv, Activation::None, false, exec);
        let attn = sized(&mut s.attn, rows * c);
        let head_dim = c / heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        for g in groups {
            let r = g.rows();
            let q = &qkv[r.start * 3 * c..r.end * 3 * c];
            let out = &mut attn[r.start * c..r.end * c];
            let shape = AttentionShape {
                batch: g.batch,
                seq: g.seq,
                heads,
                head_dim,
            };
            exec.install(|| {
                clip_kernels::attention(
                    exec.isa(),
                    q,
                    &q[c..],
                    &q[2 * c..],
                    3 * c,
                    out,
                    shape,
                    causal,
                    scale,
                )
            });
        }
    }

    /// `x <- x + fc2(act(fc1(LN2(x))))`.
    fn mlp(&self, x: &mut [f32], s: &mut Scratch, exec: &Exec) {
        let LayerDims {
            width: c, mlp, act, ..
        } = self.dims;
        let rows = x.len() / c;
        let h = sized(&mut s.h, rows * c);
        self.layer_norm2.forward(x, h, exec);
        let m = sized(&mut s.mlp, rows * mlp);
        self.fc1.forward_into(h, m, act, false, exec);
        self.fc2.forward_into(m, x, Activation::None, true, exec);
    }
}

/// Per-layer states a forward pass keeps for comparison with a reference.
#[derive(Default)]
pub(crate) struct States {
    /// After each layer.
    pub hidden: Vec<Vec<f32>>,
    /// After each layer's attention half (its residual add included).
    pub attention: Vec<Vec<f32>>,
}

/// Runs a tower's layer stack over `x` (`[rows, c]`) and returns its output at the rows
/// `pool` (`[pool.len(), c]`). With `states` (pushed after each layer and each attention
/// half), every layer runs on every row and `x` ends as the last layer's output; without, the
/// last layer runs its output projection and MLP on the pooled rows only
/// ([`EncoderLayer::forward_rows`]: bitwise the same pooled rows).
pub(crate) fn run_stack(
    layers: &[EncoderLayer],
    x: &mut [f32],
    c: usize,
    groups: &[SeqGroup],
    pool: &[usize],
    mut states: Option<&mut States>,
    exec: &Exec,
) -> Vec<f32> {
    let mut scratch = Scratch::default();
    let (last, all_but_last) = match layers.split_last() {
        Some((l, rest)) if states.is_none() => (Some(l), rest),
        _ => (None, layers),
    };
    for layer in all_but_last {
        let attention = states.as_deref_mut().map(|s| &mut s.attention);
        layer.forward(x, groups, &mut scratch, exec, attention);
        if let Some(s) = states.as_deref_mut() {
            s.hidden.push(x.to_vec());
        }
    }
    match last {
        Some(l) => l.forward_rows(x, groups, pool, &mut scratch, exec),
        None => pool
            .iter()
            .flat_map(|&r| x[r * c..(r + 1) * c].iter().copied())
            .collect(),
    }
}
