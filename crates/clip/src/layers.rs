//! The blocks both towers share: layer norm and the pre-LN transformer encoder layer
//! (LN, multi-head attention, residual, LN, MLP, residual), with their checkpoint key names
//! in the Hugging Face and OpenAI layouts.
//!
//! Activations are row-major `[rows, C]` buffers; several sequences of one length form a
//! group that attention sees as `[B, T, C]`.

use crate::weights::WeightFile;
use crate::Result;
use clip_kernels::{rows, Activation, AttentionShape};
use clip_tensor::{Linear, Precision, Tensor, Threads};
use rayon::prelude::*;

/// How the checkpoint names its tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `vision_model.encoder.layers.N.self_attn.q_proj.weight`, ...
    HuggingFace,
    /// `visual.transformer.resblocks.N.attn.in_proj_weight`, ...
    OpenAi,
}

/// How loaded weights are packed: the pool that packs them and the precision they keep.
#[derive(Clone, Copy, Debug)]
pub struct Packing<'a> {
    pub th: &'a Threads,
    pub precision: Precision,
}

/// Reads an f32 copy of `key` (converting f16/bf16), checking its shape.
pub(crate) fn read(wf: &WeightFile, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
    wf.get_f32(key, shape)
}

/// Packs the `[out, in]` weight `key` (and `bias`, if given) for the GEMM, then releases the
/// mapped pages.
pub(crate) fn linear(
    wf: &WeightFile,
    key: &str,
    bias: Option<&str>,
    out: usize,
    inp: usize,
    pk: &Packing<'_>,
) -> Result<Linear> {
    let w = wf.get(key, &[out, inp])?;
    let b = bias.map(|b| read(wf, b, &[out])).transpose()?;
    // bf16 packs straight from the stored bits (or rounds f32/f16); f32 from an f32 view.
    let lin = match pk.precision {
        Precision::Bf16 => {
            let b = b.map(|b| Tensor::from_vec(b, &[out])).transpose()?;
            Linear::new_with(&w, b.as_ref(), Precision::Bf16, pk.th)?
        }
        Precision::F32 => {
            let w = w.to_f32()?;
            Linear::from_rows(w.as_f32_slice()?, out, inp, b, pk.th)?
        }
    };
    drop(w);
    wf.release(key);
    Ok(lin)
}

/// The projection of a tower (no bias) as a `[D, C]` Linear: HF stores `hf_key` as `[D, C]`,
/// OpenAI `openai_key` as `[C, D]` used as `x @ proj`.
pub(crate) fn projection(
    wf: &WeightFile,
    layout: Layout,
    hf_key: &str,
    openai_key: &str,
    width: usize,
    dim: usize,
    pk: &Packing<'_>,
) -> Result<Linear> {
    match layout {
        Layout::HuggingFace => linear(wf, hf_key, None, dim, width, pk),
        Layout::OpenAi => Ok(Linear::from_in_out_with(
            &read(wf, openai_key, &[width, dim])?,
            width,
            dim,
            None,
            pk.precision,
            pk.th,
        )?),
    }
}

/// Runs a tower's layer stack over `x` (`[rows, c]`) and returns its output at the rows
/// `pool` (`[pool.len(), c]`). With `hidden` (per-layer states, pushed after each layer),
/// every layer runs on every row and `x` ends as the last layer's output; without, the last
/// layer runs its output projection and MLP on the pooled rows only
/// ([`EncoderLayer::forward_rows`]: bitwise the same pooled rows).
pub(crate) fn run_stack(
    layers: &[EncoderLayer],
    x: &mut [f32],
    c: usize,
    groups: &[(usize, usize, usize)],
    pool: &[usize],
    mut hidden: Option<&mut Vec<Vec<f32>>>,
    th: &Threads,
) -> Vec<f32> {
    let mut scratch = Scratch::default();
    let (last, all_but_last) = match layers.split_last() {
        Some((l, rest)) if hidden.is_none() => (Some(l), rest),
        _ => (None, layers),
    };
    for layer in all_but_last {
        layer.forward(x, groups, &mut scratch, th);
        if let Some(h) = hidden.as_deref_mut() {
            h.push(x.to_vec());
        }
    }
    match last {
        Some(l) => l.forward_rows(x, groups, pool, &mut scratch, th),
        None => pool
            .iter()
            .flat_map(|&r| x[r * c..(r + 1) * c].iter().copied())
            .collect(),
    }
}

/// `torch.nn.LayerNorm` over the last dimension.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

impl LayerNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias`, both `[width]`.
    pub fn load(wf: &WeightFile, prefix: &str, width: usize, eps: f32) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: read(wf, &format!("{prefix}.weight"), &[width])?,
            bias: read(wf, &format!("{prefix}.bias"), &[width])?,
            eps,
        })
    }

    /// `out <- LN(x)` row by row (rows in parallel).
    pub fn forward(&self, x: &[f32], out: &mut [f32], th: &Threads) {
        let c = self.weight.len();
        let isa = th.isa();
        let chunk = c * (8192 / c).max(1);
        th.install(|| {
            out.par_chunks_mut(chunk)
                .zip(x.par_chunks(chunk))
                .for_each(|(o, x)| {
                    rows::layernorm_rows(isa, x, o, c, &self.weight, &self.bias, self.eps)
                })
        });
    }
}

/// Sizes of one encoder layer.
#[derive(Clone, Copy, Debug)]
pub struct LayerDims {
    pub width: usize,
    pub heads: usize,
    pub mlp: usize,
    pub eps: f32,
    pub act: Activation,
    pub causal: bool,
}

/// One pre-LN transformer block.
#[derive(Debug)]
pub struct EncoderLayer {
    pub layer_norm1: LayerNorm,
    /// q, k and v projections fused into one `[3C, C]` GEMM.
    pub qkv_proj: Linear,
    pub out_proj: Linear,
    pub layer_norm2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    pub dims: LayerDims,
}

/// Scratch buffers one forward pass reuses across layers.
#[derive(Default)]
pub struct Scratch {
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
    /// Loads layer `prefix` (e.g. `vision_model.encoder.layers.3` or
    /// `visual.transformer.resblocks.3`).
    pub fn load(
        wf: &WeightFile,
        layout: Layout,
        prefix: &str,
        dims: LayerDims,
        pk: &Packing<'_>,
    ) -> Result<EncoderLayer> {
        let (c, m) = (dims.width, dims.mlp);
        let k = |s: &str| format!("{prefix}.{s}");
        let layer = match layout {
            Layout::HuggingFace => {
                // q, k and v packed side by side into one weight, straight from the file.
                let names = ["q_proj", "k_proj", "v_proj"].map(|p| k(&format!("self_attn.{p}")));
                let mut w = Vec::with_capacity(3);
                let mut b = Vec::with_capacity(3 * c);
                for p in &names {
                    w.push(wf.get(&format!("{p}.weight"), &[c, c])?);
                    b.extend(read(wf, &format!("{p}.bias"), &[c])?);
                }
                let qkv_proj =
                    Linear::stacked_with(&[&w[0], &w[1], &w[2]], Some(b), pk.precision, pk.th)?;
                drop(w);
                for p in &names {
                    wf.release(&format!("{p}.weight"));
                }
                EncoderLayer {
                    layer_norm1: LayerNorm::load(wf, &k("layer_norm1"), c, dims.eps)?,
                    qkv_proj,
                    out_proj: linear(
                        wf,
                        &k("self_attn.out_proj.weight"),
                        Some(&k("self_attn.out_proj.bias")),
                        c,
                        c,
                        pk,
                    )?,
                    layer_norm2: LayerNorm::load(wf, &k("layer_norm2"), c, dims.eps)?,
                    fc1: linear(wf, &k("mlp.fc1.weight"), Some(&k("mlp.fc1.bias")), m, c, pk)?,
                    fc2: linear(wf, &k("mlp.fc2.weight"), Some(&k("mlp.fc2.bias")), c, m, pk)?,
                    dims,
                }
            }
            Layout::OpenAi => EncoderLayer {
                layer_norm1: LayerNorm::load(wf, &k("ln_1"), c, dims.eps)?,
                qkv_proj: linear(
                    wf,
                    &k("attn.in_proj_weight"),
                    Some(&k("attn.in_proj_bias")),
                    3 * c,
                    c,
                    pk,
                )?,
                out_proj: linear(
                    wf,
                    &k("attn.out_proj.weight"),
                    Some(&k("attn.out_proj.bias")),
                    c,
                    c,
                    pk,
                )?,
                layer_norm2: LayerNorm::load(wf, &k("ln_2"), c, dims.eps)?,
                fc1: linear(
                    wf,
                    &k("mlp.c_fc.weight"),
                    Some(&k("mlp.c_fc.bias")),
                    m,
                    c,
                    pk,
                )?,
                fc2: linear(
                    wf,
                    &k("mlp.c_proj.weight"),
                    Some(&k("mlp.c_proj.bias")),
                    c,
                    m,
                    pk,
                )?,
                dims,
            },
        };
        Ok(layer)
    }

    /// Layers `{prefix}.0` .. `{prefix}.{count - 1}`.
    pub fn load_stack(
        wf: &WeightFile,
        layout: Layout,
        prefix: &str,
        count: usize,
        dims: LayerDims,
        pk: &Packing<'_>,
    ) -> Result<Vec<EncoderLayer>> {
        (0..count)
            .map(|i| EncoderLayer::load(wf, layout, &format!("{prefix}.{i}"), dims, pk))
            .collect()
    }

    /// `x <- x + MHA(LN1(x)); x <- x + MLP(LN2(x))` in place. `x` is `[rows, C]`; `groups`
    /// lists `(first_row, batch, seq)` runs of equal-length sequences covering the rows.
    pub fn forward(
        &self,
        x: &mut [f32],
        groups: &[(usize, usize, usize)],
        s: &mut Scratch,
        th: &Threads,
    ) {
        self.attend(x, groups, s, th);
        let attn = &s.attn[..x.len()];
        self.out_proj
            .forward_into(attn, x, Activation::None, true, th);
        self.mlp(x, s, th);
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
        groups: &[(usize, usize, usize)],
        keep: &[usize],
        s: &mut Scratch,
        th: &Threads,
    ) -> Vec<f32> {
        let c = self.dims.width;
        self.attend(x, groups, s, th);
        let gather = |m: &[f32]| -> Vec<f32> {
            keep.iter()
                .flat_map(|&r| m[r * c..(r + 1) * c].iter().copied())
                .collect()
        };
        let attn = gather(&s.attn);
        let mut y = gather(x);
        self.out_proj
            .forward_into(&attn, &mut y, Activation::None, true, th);
        self.mlp(&mut y, s, th);
        y
    }

    /// `s.attn <- attention(LN1(x))`, before the output projection.
    fn attend(&self, x: &[f32], groups: &[(usize, usize, usize)], s: &mut Scratch, th: &Threads) {
        let LayerDims {
            width: c,
            heads,
            causal,
            ..
        } = self.dims;
        let rows = x.len() / c;
        let h = sized(&mut s.h, rows * c);
        self.layer_norm1.forward(x, h, th);
        let qkv = sized(&mut s.qkv, rows * 3 * c);
        self.qkv_proj
            .forward_into(h, qkv, Activation::None, false, th);
        let attn = sized(&mut s.attn, rows * c);
        let head_dim = c / heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        for &(first, batch, seq) in groups {
            let q = &qkv[first * 3 * c..(first + batch * seq) * 3 * c];
            let out = &mut attn[first * c..(first + batch * seq) * c];
            let shape = AttentionShape {
                batch,
                seq,
                heads,
                head_dim,
            };
            th.install(|| {
                clip_kernels::attention(
                    th.isa(),
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
    fn mlp(&self, x: &mut [f32], s: &mut Scratch, th: &Threads) {
        let LayerDims {
            width: c, mlp, act, ..
        } = self.dims;
        let rows = x.len() / c;
        let h = sized(&mut s.h, rows * c);
        self.layer_norm2.forward(x, h, th);
        let m = sized(&mut s.mlp, rows * mlp);
        self.fc1.forward_into(h, m, act, false, th);
        self.fc2.forward_into(m, x, Activation::None, true, th);
    }
}
