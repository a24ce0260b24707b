//! A full-size model with seeded random weights, built in memory with no files: for trying
//! the pipeline (`--random-weights`) and for benchmarks. Its outputs mean nothing.
//!
//! The weights are written as an in-memory safetensors file in the Hugging Face layout and
//! loaded through the ordinary loader. Scales follow `tools/reference/make_reference.py`
//! (Linear weights with variance 1/fan_in, small biases, LayerNorm near identity) so
//! activations have realistic magnitudes.

use crate::config::ClipConfig;
use crate::model::{ClipModel, LoadOptions};
use crate::weights::WeightFile;
use crate::Result;
use std::path::Path;

/// A splitmix64 stream turned into uniform floats with a given standard deviation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on [-std*sqrt3, std*sqrt3): mean 0, standard deviation `std`.
    fn uniform(&mut self, std: f32) -> f32 {
        let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        (u * 2.0 - 1.0) * std * 3f32.sqrt()
    }
}

/// How to fill one tensor.
enum Fill {
    Std(f32),
    Around(f32, f32),
    Const(f32),
}

fn tensor_list(cfg: &ClipConfig) -> Vec<(String, Vec<usize>, Fill)> {
    let mut out = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, fill: Fill| out.push((name, shape, fill));
    let v = &cfg.vision;
    let t = &cfg.text;
    let (c, p) = (v.hidden_size, v.patch_size);
    push(
        "vision_model.embeddings.class_embedding".into(),
        vec![c],
        Fill::Std(1.0),
    );
    push(
        "vision_model.embeddings.patch_embedding.weight".into(),
        vec![c, 3, p, p],
        Fill::Std(1.0 / ((3 * p * p) as f32).sqrt()),
    );
    push(
        "vision_model.embeddings.position_embedding.weight".into(),
        vec![v.num_positions(), c],
        Fill::Std(0.1),
    );
    for ln in ["vision_model.pre_layrnorm", "vision_model.post_layernorm"] {
        push(format!("{ln}.weight"), vec![c], Fill::Around(1.0, 0.1));
        push(format!("{ln}.bias"), vec![c], Fill::Std(0.1));
    }
    let mut layer = |prefix: String, c: usize, m: usize| {
        for n in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            let s = if n == "q_proj" || n == "k_proj" {
                (2.0 / c as f32).sqrt()
            } else {
                1.0 / (c as f32).sqrt()
            };
            push(
                format!("{prefix}.self_attn.{n}.weight"),
                vec![c, c],
                Fill::Std(s),
            );
            push(
                format!("{prefix}.self_attn.{n}.bias"),
                vec![c],
                Fill::Std(0.05),
            );
        }
        for ln in ["layer_norm1", "layer_norm2"] {
            push(
                format!("{prefix}.{ln}.weight"),
                vec![c],
                Fill::Around(1.0, 0.1),
            );
            push(format!("{prefix}.{ln}.bias"), vec![c], Fill::Std(0.1));
        }
        push(
            format!("{prefix}.mlp.fc1.weight"),
            vec![m, c],
            Fill::Std(1.0 / (c as f32).sqrt()),
        );
        push(format!("{prefix}.mlp.fc1.bias"), vec![m], Fill::Std(0.05));
        push(
            format!("{prefix}.mlp.fc2.weight"),
            vec![c, m],
            Fill::Std(1.0 / (m as f32).sqrt()),
        );
        push(format!("{prefix}.mlp.fc2.bias"), vec![c], Fill::Std(0.05));
    };
    for i in 0..v.num_hidden_layers {
        layer(
            format!("vision_model.encoder.layers.{i}"),
            c,
            v.intermediate_size,
        );
    }
    for i in 0..t.num_hidden_layers {
        layer(
            format!("text_model.encoder.layers.{i}"),
            t.hidden_size,
            t.intermediate_size,
        );
    }
    let tc = t.hidden_size;
    push(
        "text_model.embeddings.token_embedding.weight".into(),
        vec![t.vocab_size, tc],
        Fill::Std(1.0),
    );
    push(
        "text_model.embeddings.position_embedding.weight".into(),
        vec![t.max_position_embeddings, tc],
        Fill::Std(0.1),
    );
    push(
        "text_model.final_layer_norm.weight".into(),
        vec![tc],
        Fill::Around(1.0, 0.1),
    );
    push(
        "text_model.final_layer_norm.bias".into(),
        vec![tc],
        Fill::Std(0.1),
    );
    push(
        "visual_projection.weight".into(),
        vec![cfg.projection_dim, c],
        Fill::Std(1.0 / (c as f32).sqrt()),
    );
    push(
        "text_projection.weight".into(),
        vec![cfg.projection_dim, tc],
        Fill::Std(1.0 / (tc as f32).sqrt()),
    );
    push("logit_scale".into(), vec![], Fill::Const(100f32.ln()));
    out
}

/// The bytes of a safetensors file holding seeded random weights for `cfg`.
pub fn random_safetensors(cfg: &ClipConfig, seed: u64) -> Vec<u8> {
    let list = tensor_list(cfg);
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, _) in &list {
        let bytes = shape.iter().product::<usize>() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    let mut rng = Rng(seed);
    for (_, shape, fill) in &list {
        let n: usize = shape.iter().product();
        for _ in 0..n {
            let v = match fill {
                Fill::Std(s) => rng.uniform(*s),
                Fill::Around(m, s) => m + rng.uniform(*s),
                Fill::Const(c) => *c,
            };
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

impl ClipModel {
    /// A model of configuration `cfg` with seeded random weights (no files). For trying the
    /// engine and for benchmarks only: its embeddings mean nothing.
    pub fn random(cfg: &ClipConfig, seed: u64, opts: &LoadOptions) -> Result<ClipModel> {
        let bytes = random_safetensors(cfg, seed);
        let wf = WeightFile::from_bytes(Path::new("<random weights>"), bytes)?;
        ClipModel::from_weights(
            wf,
            Some(cfg.clone()),
            clip_tokenizer::Tokenizer::new()?,
            opts,
        )
    }
}
