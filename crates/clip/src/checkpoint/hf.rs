//! The Hugging Face format: `CLIPModel`'s key names (the logical names themselves, but for
//! the q, k and v projections, stored apart and packed as one) and its `config.json`.
//!
//! Not here: inferring a configuration from shapes (`infer.rs`).

use super::Stored;
use crate::{Activation, ClipConfig, Error, Result, TextConfig, TextPool, VisionConfig};
use serde_json::Value;
use std::path::Path;

/// Where `CLIPModel` keeps the logical tensor `name`.
pub(crate) fn resolve(name: &str) -> Stored {
    if let Some((layer, tail)) = name.split_once(".self_attn.qkv_proj.") {
        return Stored::Stacked(
            ["q_proj", "k_proj", "v_proj"]
                .iter()
                .map(|p| format!("{layer}.self_attn.{p}.{tail}"))
                .collect(),
        );
    }
    Stored::Key(name.to_string())
}

/// Reads a Hugging Face `config.json` given as bytes; `path` names it in errors. Missing
/// fields take `CLIPConfig`'s defaults.
pub(crate) fn read_config(bytes: &[u8], path: &Path) -> Result<ClipConfig> {
    let bad = |reason: String| Error::InvalidConfig {
        path: path.to_path_buf(),
        reason,
    };
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    if !v.is_object() {
        return Err(bad("not a JSON object".into()));
    }
    let section = |name: &str| -> Value {
        match v.get(name) {
            Some(s) if s.is_object() => s.clone(),
            _ => v
                .get(format!("{name}_dict"))
                .cloned()
                .unwrap_or(Value::Null),
        }
    };
    let (vs, ts) = (section("vision_config"), section("text_config"));
    let d = ClipConfig::vit_base_patch32();
    let num = |s: &Value, key: &str, default: usize| -> Result<usize> {
        match s.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x
                .as_u64()
                .filter(|&n| n > 0 && n < (1 << 31))
                .map(|n| n as usize)
                .ok_or_else(|| bad(format!("{key} = {x} is not a positive integer"))),
        }
    };
    let eps = |s: &Value| -> Result<f32> {
        match s.get("layer_norm_eps") {
            None | Some(Value::Null) => Ok(1e-5),
            Some(x) => x
                .as_f64()
                .map(|e| e as f32)
                .ok_or_else(|| bad(format!("layer_norm_eps = {x} is not a number"))),
        }
    };
    let act = |s: &Value| -> Result<Activation> {
        match s.get("hidden_act").and_then(Value::as_str) {
            None | Some("quick_gelu") => Ok(Activation::QuickGelu),
            Some("gelu") => Ok(Activation::Gelu),
            Some(other) => Err(bad(format!(
                "hidden_act {other:?} is not supported (quick_gelu, gelu)"
            ))),
        }
    };
    let vision = VisionConfig {
        hidden_size: num(&vs, "hidden_size", d.vision.hidden_size)?,
        intermediate_size: num(&vs, "intermediate_size", d.vision.intermediate_size)?,
        num_hidden_layers: num(&vs, "num_hidden_layers", d.vision.num_hidden_layers)?,
        num_attention_heads: num(&vs, "num_attention_heads", d.vision.num_attention_heads)?,
        image_size: num(&vs, "image_size", d.vision.image_size)?,
        patch_size: num(&vs, "patch_size", d.vision.patch_size)?,
        num_channels: num(&vs, "num_channels", 3)?,
        layer_norm_eps: eps(&vs)?,
        hidden_act: act(&vs)?,
        ..d.vision
    };
    let eos = num(&ts, "eos_token_id", 2)?;
    let text = TextConfig {
        hidden_size: num(&ts, "hidden_size", d.text.hidden_size)?,
        intermediate_size: num(&ts, "intermediate_size", d.text.intermediate_size)?,
        num_hidden_layers: num(&ts, "num_hidden_layers", d.text.num_hidden_layers)?,
        num_attention_heads: num(&ts, "num_attention_heads", d.text.num_attention_heads)?,
        vocab_size: num(&ts, "vocab_size", d.text.vocab_size)?,
        max_position_embeddings: num(&ts, "max_position_embeddings", 77)?,
        layer_norm_eps: eps(&ts)?,
        hidden_act: act(&ts)?,
        // transformers pools at the argmax for the legacy eos_token_id 2, else at the id.
        pool: if eos == 2 {
            TextPool::Argmax
        } else {
            TextPool::FirstOf(eos as u32)
        },
        layer_scale: false,
    };
    let cfg = ClipConfig {
        vision,
        text,
        projection_dim: num(&v, "projection_dim", 512)?,
    };
    cfg.validate().map_err(bad)?;
    Ok(cfg)
}
