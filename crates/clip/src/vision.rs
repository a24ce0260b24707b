//! The ViT image encoder, as Hugging Face's `CLIPVisionTransformer` (and OpenAI's
//! `VisionTransformer`) compute it:
//! patch embedding (a convolution of stride = kernel = patch, done as a GEMM over unfolded
//! patches) -> class token + positional embeddings -> pre-LN -> N encoder layers -> post-LN
//! of the class token -> projection (no bias).
//! Upstream: transformers `models/clip/modeling_clip.py`, OpenAI `clip/model.py`.

use crate::config::{VisionConfig, VisionPool};
use crate::layers::{run_stack, EncoderLayer, LayerDims, LayerNorm, SeqGroup, States};
use crate::loader::{Init, Layer, Vb};
use crate::{Error, Result};
use clip_kernels::Activation;
use clip_tensor::{Exec, Linear};

/// The vision tower's weights; fields named as Hugging Face's checkpoint keys.
#[derive(Debug)]
pub(crate) struct VisionTower {
    config: VisionConfig,
    /// The patch convolution as `[C, 3*P*P]`, no bias.
    patch_embedding: Linear,
    class_embedding: Vec<f32>,
    /// `[T, C]`.
    position_embedding: Vec<f32>,
    /// `None` without a pre-LN (open_clip's `no_ln_pre`).
    pre_layrnorm: Option<LayerNorm>,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
    /// `[D, C]`, no bias.
    visual_projection: Linear,
}

/// What a vision forward pass returns.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct VisionOutput {
    /// `[N, C]`: post-LN class tokens.
    pub pooled: Vec<f32>,
    /// `[N, D]`: projected, not normalised (HF's `get_image_features`).
    pub features: Vec<f32>,
    /// `[N, T, C]` per layer, index 0 after the pre-LN, if asked for.
    pub hidden_states: Vec<Vec<f32>>,
    /// `[N, T, C]` per layer: the residual stream after the layer's attention half (before
    /// its MLP), if hidden states were asked for.
    pub attention_states: Vec<Vec<f32>>,
}

impl VisionTower {
    /// Loads the tower from `vb` (the root view: `vision_model.*` and `visual_projection`).
    pub fn load(vb: &Vb<'_>, cfg: &VisionConfig, projection_dim: usize) -> Result<VisionTower> {
        let (c, p, t) = (cfg.hidden_size, cfg.patch_size, cfg.num_positions());
        let model = vb.pp("vision_model");
        let emb = model.pp("embeddings");
        // The convolution of stride = kernel = P is a GEMM over unfolded patches.
        let conv = emb.pp("patch_embedding").layer(Layer::PatchEmbedding);
        let init = Init::Std(1.0 / ((3 * p * p) as f32).sqrt());
        let conv_w = conv
            .weight("weight", &[c, 3, p, p], init)?
            .reshape(&[c, 3 * p * p])?;
        let dims = LayerDims {
            width: c,
            heads: cfg.num_attention_heads,
            mlp: cfg.intermediate_size,
            eps: cfg.layer_norm_eps,
            act: cfg.hidden_act,
            causal: false,
            layer_scale: cfg.layer_scale,
        };
        Ok(VisionTower {
            config: cfg.clone(),
            patch_embedding: conv.pack("weight", conv_w)?,
            class_embedding: emb.vec("class_embedding", &[c], Init::Std(1.0))?,
            position_embedding: emb.pp("position_embedding").vec(
                "weight",
                &[t, c],
                Init::Std(0.1),
            )?,
            pre_layrnorm: match cfg.ln_pre {
                true => Some(model.pp("pre_layrnorm").layer_norm(c, cfg.layer_norm_eps)?),
                false => None,
            },
            layers: EncoderLayer::load_stack(
                &model.pp("encoder").pp("layers"),
                cfg.num_hidden_layers,
                dims,
            )?,
            post_layernorm: model
                .pp("post_layernorm")
                .layer_norm(c, cfg.layer_norm_eps)?,
            visual_projection: vb
                .pp("visual_projection")
                .layer(Layer::Projection)
                .linear_no_bias(projection_dim, c)?,
        })
    }

    /// Runs `n` images of `pixels` (`[n, 3, H, W]`, H = W = image_size).
    pub fn forward(
        &self,
        pixels: &[f32],
        n: usize,
        hidden: bool,
        exec: &Exec,
    ) -> Result<VisionOutput> {
        let cfg = &self.config;
        let (c, p, s, g, t) = (
            cfg.hidden_size,
            cfg.patch_size,
            cfg.image_size,
            cfg.grid(),
            cfg.num_positions(),
        );
        let needed = n.checked_mul(3 * s * s);
        if needed != Some(pixels.len()) {
            return Err(Error::InvalidInput {
                reason: format!(
                    "pixel values have {} floats, [{n}, 3, {s}, {s}] needs {}",
                    pixels.len(),
                    needed.map_or("more than memory holds".to_string(), |v| v.to_string())
                ),
            });
        }
        let mut out = VisionOutput::default();
        if n == 0 {
            return Ok(out);
        }
        let patches = unfold(pixels, n, s, p);
        let mut emb = vec![0.0f32; n * g * g * c];
        self.patch_embedding
            .forward_into(&patches, &mut emb, Activation::None, false, exec);
        drop(patches);
        let mut x = vec![0.0f32; n * t * c];
        let pos = &self.position_embedding;
        for img in 0..n {
            let row0 = img * t * c;
            for j in 0..c {
                x[row0 + j] = self.class_embedding[j] + pos[j];
            }
            for q in 0..g * g {
                let dst = &mut x[row0 + (q + 1) * c..row0 + (q + 2) * c];
                let src = &emb[(img * g * g + q) * c..(img * g * g + q + 1) * c];
                for ((d, &e), &pe) in dst.iter_mut().zip(src).zip(&pos[(q + 1) * c..(q + 2) * c]) {
                    *d = e + pe;
                }
            }
        }
        drop(emb);
        if let Some(ln) = &self.pre_layrnorm {
            let mut h = vec![0.0f32; x.len()];
            ln.forward(&x, &mut h, exec);
            x = h;
        }
        if hidden {
            out.hidden_states.push(x.clone());
        }
        let pool_rows: Vec<usize> = match cfg.pool {
            VisionPool::ClassToken => (0..n).map(|i| i * t).collect(),
            VisionPool::MeanOfPatches => (0..n).flat_map(|i| i * t + 1..(i + 1) * t).collect(),
        };
        let mut states = hidden.then(|| States {
            hidden: std::mem::take(&mut out.hidden_states),
            attention: Vec::new(),
        });
        let rows = run_stack(
            &self.layers,
            &mut x,
            c,
            &[SeqGroup {
                first_row: 0,
                batch: n,
                seq: t,
            }],
            &pool_rows,
            states.as_mut(),
            exec,
        );
        if let Some(st) = states {
            out.hidden_states = st.hidden;
            out.attention_states = st.attention;
        }
        out.pooled = self.pool(rows, n, exec);
        out.features = vec![0.0f32; n * self.visual_projection.out_features()];
        self.visual_projection.forward_into(
            &out.pooled,
            &mut out.features,
            Activation::None,
            false,
            exec,
        );
        Ok(out)
    }
}

impl VisionTower {
    /// The pooled state `[n, C]` from the last layer's pooled rows: the class tokens
    /// (`[n, C]`), or every image's patch tokens (`[n * (T-1), C]`) averaged; the post-LN
    /// before the mean, or after it with `final_ln_after_pool`.
    fn pool(&self, rows: Vec<f32>, n: usize, exec: &Exec) -> Vec<f32> {
        let cfg = &self.config;
        let c = cfg.hidden_size;
        let ln = |x: &[f32]| {
            let mut o = vec![0.0f32; x.len()];
            self.post_layernorm.forward(x, &mut o, exec);
            o
        };
        match cfg.pool {
            VisionPool::ClassToken => ln(&rows),
            VisionPool::MeanOfPatches => {
                let rows = if cfg.final_ln_after_pool {
                    rows
                } else {
                    ln(&rows)
                };
                let mean = mean_of_groups(&rows, n, c);
                if cfg.final_ln_after_pool {
                    ln(&mean)
                } else {
                    mean
                }
            }
        }
    }
}

/// `[n * k, c]` rows -> the mean of each group of `k` consecutive rows, `[n, c]`.
fn mean_of_groups(rows: &[f32], n: usize, c: usize) -> Vec<f32> {
    let k = rows.len() / (n * c).max(1);
    let mut out = vec![0.0f32; n * c];
    for (o, group) in out
        .chunks_exact_mut(c.max(1))
        .zip(rows.chunks_exact((k * c).max(1)))
    {
        for row in group.chunks_exact(c) {
            o.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
        }
        o.iter_mut().for_each(|a| *a /= k as f32);
    }
    out
}

/// `[n, 3, S, S]` pixels -> `[n * (S/P)^2, 3*P*P]` patches, each flattened as the convolution
/// weight `[C, 3, P, P]` is.
fn unfold(pixels: &[f32], n: usize, s: usize, p: usize) -> Vec<f32> {
    let g = s / p;
    let k = 3 * p * p;
    let mut out = vec![0.0f32; n * g * g * k];
    for img in 0..n {
        for gy in 0..g {
            for gx in 0..g {
                let row = &mut out[((img * g + gy) * g + gx) * k..][..k];
                for ch in 0..3 {
                    for py in 0..p {
                        let src = ((img * 3 + ch) * s + gy * p + py) * s + gx * p;
                        row[(ch * p + py) * p..(ch * p + py + 1) * p]
                            .copy_from_slice(&pixels[src..src + p]);
                    }
                }
            }
        }
    }
    out
}
