//! The causal text transformer, as Hugging Face's `CLIPTextTransformer` (and OpenAI's
//! `encode_text`) compute it: token + positional embeddings -> N causal encoder layers ->
//! final LN -> pooling at the end-of-text token -> projection (no bias).
//!
//! Each sequence is computed only up to its pooling position: the causal mask keeps later
//! positions out of it, so padding after EOT is never computed. Sequences of equal length
//! share attention calls; all rows share the GEMMs. A sequence's result does not depend on
//! the others in its batch.
//! Upstream: transformers `models/clip/modeling_clip.py`, OpenAI `clip/model.py`.

use crate::config::{TextConfig, TextPool};
use crate::layers::{run_stack, EncoderLayer, LayerDims, LayerNorm, SeqGroup, States};
use crate::loader::{Init, Layer, Vb};
use crate::{Error, Result};
use clip_kernels::Activation;
use clip_tensor::{Exec, Linear, Tensor};

/// The text tower's weights; fields named as Hugging Face's checkpoint keys.
#[derive(Debug)]
pub(crate) struct TextTower {
    config: TextConfig,
    /// `[V, C]`, kept where it lies (mapped); rows are read as tokens need them.
    token_embedding: Tensor,
    /// `[context, C]`.
    position_embedding: Vec<f32>,
    layers: Vec<EncoderLayer>,
    final_layer_norm: LayerNorm,
    /// `[D, C]`, no bias.
    text_projection: Linear,
}

/// What a text forward pass returns.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TextOutput {
    /// `[M, C]`: final-LN state at each sequence's pooling position.
    pub pooled: Vec<f32>,
    /// `[M, D]`: projected, not normalised (HF's `get_text_features`).
    pub features: Vec<f32>,
    /// Per sequence, the number of positions computed (pooling position + 1, or every
    /// given position with `full_context`).
    pub lengths: Vec<usize>,
    /// Per layer (index 0 = embeddings), rows of all sequences concatenated
    /// (`sum(lengths)` x C), if asked for.
    pub hidden_states: Vec<Vec<f32>>,
    /// Per layer: the residual stream after the layer's attention half (before its MLP),
    /// as the hidden states, if they were asked for.
    pub attention_states: Vec<Vec<f32>>,
    /// The final-LN states of every computed position, if hidden states were asked for.
    pub last_hidden_state: Vec<f32>,
}

impl TextTower {
    /// Loads the tower from `vb` (the root view: `text_model.*` and `text_projection`).
    pub fn load(vb: &Vb<'_>, cfg: &TextConfig, projection_dim: usize) -> Result<TextTower> {
        let (c, ctx) = (cfg.hidden_size, cfg.max_position_embeddings);
        let model = vb.pp("text_model");
        let emb = model.pp("embeddings");
        let dims = LayerDims {
            width: c,
            heads: cfg.num_attention_heads,
            mlp: cfg.intermediate_size,
            eps: cfg.layer_norm_eps,
            act: cfg.hidden_act,
            causal: true,
            layer_scale: cfg.layer_scale,
        };
        Ok(TextTower {
            config: cfg.clone(),
            layers: EncoderLayer::load_stack(
                &model.pp("encoder").pp("layers"),
                cfg.num_hidden_layers,
                dims,
            )?,
            text_projection: vb
                .pp("text_projection")
                .layer(Layer::Projection)
                .linear_no_bias(projection_dim, c)?,
            token_embedding: emb.pp("token_embedding").tensor(
                "weight",
                &[cfg.vocab_size, c],
                Init::Std(1.0),
            )?,
            position_embedding: emb.pp("position_embedding").vec(
                "weight",
                &[ctx, c],
                Init::Std(0.1),
            )?,
            final_layer_norm: model
                .pp("final_layer_norm")
                .layer_norm(c, cfg.layer_norm_eps)?,
        })
    }

    /// The position whose state is pooled (see [`TextPool`]). An id looked for and absent
    /// pools position 0, as `(ids == id).argmax()` does in transformers and open_clip.
    pub fn pool_position(&self, ids: &[u32]) -> usize {
        match self.config.pool {
            TextPool::FirstOf(eos) => ids.iter().position(|&i| i == eos).unwrap_or(0),
            TextPool::First => 0,
            TextPool::Last => ids.len().saturating_sub(1),
            TextPool::Argmax => {
                let mut best = 0;
                for (i, &id) in ids.iter().enumerate() {
                    if id > ids[best] {
                        best = i;
                    }
                }
                best
            }
        }
    }

    fn check(&self, seqs: &[&[u32]]) -> Result<()> {
        let cfg = &self.config;
        for (s, ids) in seqs.iter().enumerate() {
            if ids.is_empty() || ids.len() > cfg.max_position_embeddings {
                return Err(Error::InvalidInput {
                    reason: format!(
                        "sequence {s} has {} ids; 1..={} are allowed",
                        ids.len(),
                        cfg.max_position_embeddings
                    ),
                });
            }
            if let Some((i, &id)) = ids
                .iter()
                .enumerate()
                .find(|(_, &id)| id as usize >= cfg.vocab_size)
            {
                return Err(Error::InvalidInput {
                    reason: format!(
                        "sequence {s}, position {i}: id {id} is outside the vocabulary of {}",
                        cfg.vocab_size
                    ),
                });
            }
        }
        Ok(())
    }

    /// Runs `seqs` (token ids, SOT first). With `full_context` every given position is
    /// computed; otherwise each sequence stops at its pooling position.
    pub fn forward(
        &self,
        seqs: &[&[u32]],
        full_context: bool,
        hidden: bool,
        exec: &Exec,
    ) -> Result<TextOutput> {
        self.check(seqs)?;
        let c = self.config.hidden_size;
        let pools: Vec<usize> = seqs.iter().map(|ids| self.pool_position(ids)).collect();
        let lengths: Vec<usize> = seqs
            .iter()
            .zip(&pools)
            .map(|(ids, &p)| if full_context { ids.len() } else { p + 1 })
            .collect();
        let rows: usize = lengths.iter().sum();
        let mut x = vec![0.0f32; rows * c];
        let tok = self.token_embedding.as_f32_slice().ok();
        let mut r = 0;
        for (ids, &len) in seqs.iter().zip(&lengths) {
            for (t, &id) in ids[..len].iter().enumerate() {
                let dst = &mut x[r * c..(r + 1) * c];
                let id = id as usize;
                match tok {
                    Some(tok) => dst.copy_from_slice(&tok[id * c..(id + 1) * c]),
                    None => {
                        dst.copy_from_slice(&self.token_embedding.narrow(0, id, 1)?.to_vec_f32())
                    }
                }
                for (d, &p) in dst
                    .iter_mut()
                    .zip(&self.position_embedding[t * c..(t + 1) * c])
                {
                    *d += p;
                }
                r += 1;
            }
        }
        let groups = group_runs(&lengths);
        let mut out = TextOutput {
            lengths: lengths.clone(),
            ..Default::default()
        };
        if hidden {
            out.hidden_states.push(x.clone());
        }
        // The row of each sequence's pooled (EOT) token.
        let pool_rows: Vec<usize> = lengths
            .iter()
            .zip(&pools)
            .scan(0, |start, (&len, &p)| {
                let row = *start + p;
                *start += len;
                Some(row)
            })
            .collect();
        let mut states = hidden.then(|| States {
            hidden: std::mem::take(&mut out.hidden_states),
            attention: Vec::new(),
        });
        let pooled_in = run_stack(
            &self.layers,
            &mut x,
            c,
            &groups,
            &pool_rows,
            states.as_mut(),
            exec,
        );
        if let Some(st) = states {
            out.hidden_states = st.hidden;
            out.attention_states = st.attention;
        }
        if hidden {
            out.last_hidden_state = vec![0.0f32; x.len()];
            self.final_layer_norm
                .forward(&x, &mut out.last_hidden_state, exec);
        }
        out.pooled = vec![0.0f32; pooled_in.len()];
        self.final_layer_norm
            .forward(&pooled_in, &mut out.pooled, exec);
        out.features = vec![0.0f32; seqs.len() * self.text_projection.out_features()];
        self.text_projection.forward_into(
            &out.pooled,
            &mut out.features,
            Activation::None,
            false,
            exec,
        );
        Ok(out)
    }
}

/// Runs of equal lengths as attention groups.
fn group_runs(lengths: &[usize]) -> Vec<SeqGroup> {
    let mut groups: Vec<SeqGroup> = Vec::new();
    let mut row = 0;
    for &len in lengths {
        match groups.last_mut() {
            Some(g) if g.seq == len => g.batch += 1,
            _ => groups.push(SeqGroup {
                first_row: row,
                batch: 1,
                seq: len,
            }),
        }
        row += len;
    }
    groups
}
