//! The ViT image encoder, as Hugging Face's `CLIPVisionTransformer` (and OpenAI's
//! `VisionTransformer`) compute it:
//! patch embedding (a convolution of stride = kernel = patch, done as a GEMM over unfolded
//! patches) -> class token + positional embeddings -> pre-LN -> N encoder layers -> post-LN
//! of the class token -> projection (no bias).
//! Upstream: transformers `models/clip/modeling_clip.py`, OpenAI `clip/model.py`.

use crate::config::VisionConfig;
use crate::layers::{
    projection, read, run_stack, EncoderLayer, LayerDims, LayerNorm, Layout, Packing,
};
use crate::weights::WeightFile;
use crate::{Error, Result};
use clip_kernels::Activation;
use clip_tensor::{Linear, Threads};

/// The vision tower's weights.
#[derive(Debug)]
pub struct VisionTower {
    pub config: VisionConfig,
    /// The patch convolution as `[C, 3*P*P]`, no bias.
    pub patch_embedding: Linear,
    pub class_embedding: Vec<f32>,
    /// `[T, C]`.
    pub position_embedding: Vec<f32>,
    pub pre_layrnorm: LayerNorm,
    pub layers: Vec<EncoderLayer>,
    pub post_layernorm: LayerNorm,
    /// `[D, C]`, no bias.
    pub visual_projection: Linear,
}

/// What a vision forward pass returns.
#[derive(Clone, Debug, Default)]
pub struct VisionOutput {
    /// `[N, C]`: post-LN class tokens.
    pub pooled: Vec<f32>,
    /// `[N, D]`: projected, not normalised (HF's `get_image_features`).
    pub features: Vec<f32>,
    /// `[N, T, C]` per layer, index 0 after the pre-LN, if asked for.
    pub hidden_states: Vec<Vec<f32>>,
}

impl VisionTower {
    pub fn load(
        wf: &WeightFile,
        layout: Layout,
        cfg: &VisionConfig,
        projection_dim: usize,
        pk: &Packing<'_>,
    ) -> Result<VisionTower> {
        let (c, p, t) = (cfg.hidden_size, cfg.patch_size, cfg.num_positions());
        let (pre, post, conv, cls, pos, layer_prefix) = match layout {
            Layout::HuggingFace => (
                "vision_model.pre_layrnorm",
                "vision_model.post_layernorm",
                "vision_model.embeddings.patch_embedding.weight",
                "vision_model.embeddings.class_embedding",
                "vision_model.embeddings.position_embedding.weight",
                "vision_model.encoder.layers",
            ),
            Layout::OpenAi => (
                "visual.ln_pre",
                "visual.ln_post",
                "visual.conv1.weight",
                "visual.class_embedding",
                "visual.positional_embedding",
                "visual.transformer.resblocks",
            ),
        };
        let conv_w = read(wf, conv, &[c, 3, p, p])?;
        let patch_embedding =
            Linear::from_rows_with(&conv_w, c, 3 * p * p, None, pk.precision, pk.th)?;
        let dims = LayerDims {
            width: c,
            heads: cfg.num_attention_heads,
            mlp: cfg.intermediate_size,
            eps: cfg.layer_norm_eps,
            act: cfg.hidden_act,
            causal: false,
        };
        let layers =
            EncoderLayer::load_stack(wf, layout, layer_prefix, cfg.num_hidden_layers, dims, pk)?;
        let visual_projection = projection(
            wf,
            layout,
            "visual_projection.weight",
            "visual.proj",
            c,
            projection_dim,
            pk,
        )?;
        Ok(VisionTower {
            config: cfg.clone(),
            patch_embedding,
            class_embedding: read(wf, cls, &[c])?,
            position_embedding: read(wf, pos, &[t, c])?,
            pre_layrnorm: LayerNorm::load(wf, pre, c, cfg.layer_norm_eps)?,
            layers,
            post_layernorm: LayerNorm::load(wf, post, c, cfg.layer_norm_eps)?,
            visual_projection,
        })
    }

    /// Runs `n` images of `pixels` (`[n, 3, H, W]`, H = W = image_size).
    pub fn forward(
        &self,
        pixels: &[f32],
        n: usize,
        hidden: bool,
        th: &Threads,
    ) -> Result<VisionOutput> {
        let cfg = &self.config;
        let (c, p, s, g, t) = (
            cfg.hidden_size,
            cfg.patch_size,
            cfg.image_size,
            cfg.grid(),
            cfg.num_positions(),
        );
        if pixels.len() != n * 3 * s * s {
            return Err(Error::InvalidInput {
                reason: format!(
                    "pixel values have {} floats, [{n}, 3, {s}, {s}] needs {}",
                    pixels.len(),
                    n * 3 * s * s
                ),
            });
        }
        let patches = unfold(pixels, n, s, p);
        let mut emb = vec![0.0f32; n * g * g * c];
        self.patch_embedding
            .forward_into(&patches, &mut emb, Activation::None, false, th);
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
        let mut h = vec![0.0f32; x.len()];
        self.pre_layrnorm.forward(&x, &mut h, th);
        let mut x = h;
        let mut out = VisionOutput::default();
        if hidden {
            out.hidden_states.push(x.clone());
        }
        let cls_rows: Vec<usize> = (0..n).map(|i| i * t).collect();
        let hidden_states = hidden.then_some(&mut out.hidden_states);
        let cls = run_stack(
            &self.layers,
            &mut x,
            c,
            &[(0, n, t)],
            &cls_rows,
            hidden_states,
            th,
        );
        out.pooled = vec![0.0f32; n * c];
        self.post_layernorm.forward(&cls, &mut out.pooled, th);
        out.features = vec![0.0f32; n * self.visual_projection.out_features()];
        self.visual_projection.forward_into(
            &out.pooled,
            &mut out.features,
            Activation::None,
            false,
            th,
        );
        Ok(out)
    }
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
