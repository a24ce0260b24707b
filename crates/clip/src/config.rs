//! Model configuration: the sizes of the two towers, read from a Hugging Face `config.json`
//! or inferred from OpenAI-named tensor shapes, with named constructors for the published
//! ViT CLIP models. Not here: loading tensors (see `weights.rs`).

use crate::{Error, Result};
use clip_kernels::Activation;
use serde_json::Value;
use std::path::Path;

/// The vision transformer's sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub layer_norm_eps: f32,
    pub hidden_act: Activation,
}

/// The text transformer's sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct TextConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub layer_norm_eps: f32,
    pub hidden_act: Activation,
    /// Pooling: `None` pools at the argmax of the ids (OpenAI's rule, and HF's when
    /// `eos_token_id == 2`); `Some(id)` at the first occurrence of `id`.
    pub eos_token_id: Option<u32>,
}

/// A whole CLIP model's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipConfig {
    pub vision: VisionConfig,
    pub text: TextConfig,
    pub projection_dim: usize,
}

impl VisionConfig {
    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Tokens per image: the patches and the class token.
    pub fn num_positions(&self) -> usize {
        self.grid() * self.grid() + 1
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

impl TextConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

impl ClipConfig {
    fn vit(
        width: usize,
        layers: usize,
        patch: usize,
        image: usize,
        text_width: usize,
        embed: usize,
    ) -> ClipConfig {
        ClipConfig {
            vision: VisionConfig {
                hidden_size: width,
                intermediate_size: 4 * width,
                num_hidden_layers: layers,
                num_attention_heads: width / 64,
                image_size: image,
                patch_size: patch,
                num_channels: 3,
                layer_norm_eps: 1e-5,
                hidden_act: Activation::QuickGelu,
            },
            text: TextConfig {
                hidden_size: text_width,
                intermediate_size: 4 * text_width,
                num_hidden_layers: 12,
                num_attention_heads: text_width / 64,
                vocab_size: 49408,
                max_position_embeddings: 77,
                layer_norm_eps: 1e-5,
                hidden_act: Activation::QuickGelu,
                eos_token_id: None,
            },
            projection_dim: embed,
        }
    }

    /// openai/clip-vit-base-patch32.
    pub fn vit_base_patch32() -> ClipConfig {
        Self::vit(768, 12, 32, 224, 512, 512)
    }

    /// openai/clip-vit-base-patch16.
    pub fn vit_base_patch16() -> ClipConfig {
        Self::vit(768, 12, 16, 224, 512, 512)
    }

    /// openai/clip-vit-large-patch14.
    pub fn vit_large_patch14() -> ClipConfig {
        Self::vit(1024, 24, 14, 224, 768, 768)
    }

    /// openai/clip-vit-large-patch14-336.
    pub fn vit_large_patch14_336() -> ClipConfig {
        Self::vit(1024, 24, 14, 336, 768, 768)
    }

    /// Reads a Hugging Face `config.json`. Missing fields take `CLIPConfig`'s defaults.
    pub fn from_hf_json(path: &Path) -> Result<ClipConfig> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_hf_json_bytes(&bytes, path)
    }

    /// [`ClipConfig::from_hf_json`] on the file's bytes; `path` names it in errors.
    pub fn from_hf_json_bytes(bytes: &[u8], path: &Path) -> Result<ClipConfig> {
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
        let d = Self::vit_base_patch32();
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
                    .filter(|e| *e > 0.0 && *e < 1.0)
                    .map(|e| e as f32)
                    .ok_or_else(|| bad(format!("layer_norm_eps = {x} is invalid"))),
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
            eos_token_id: if eos == 2 { None } else { Some(eos as u32) },
        };
        let cfg = ClipConfig {
            vision,
            text,
            projection_dim: num(&v, "projection_dim", 512)?,
        };
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    /// Checks the sizes agree with each other.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let v = &self.vision;
        if !v.hidden_size.is_multiple_of(v.num_attention_heads) {
            return Err(format!(
                "vision hidden_size {} is not a multiple of {} heads",
                v.hidden_size, v.num_attention_heads
            ));
        }
        if !v.image_size.is_multiple_of(v.patch_size) {
            return Err(format!(
                "image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if v.num_channels != 3 {
            return Err(format!(
                "num_channels {} (only RGB, 3, is supported)",
                v.num_channels
            ));
        }
        let t = &self.text;
        if !t.hidden_size.is_multiple_of(t.num_attention_heads) {
            return Err(format!(
                "text hidden_size {} is not a multiple of {} heads",
                t.hidden_size, t.num_attention_heads
            ));
        }
        Ok(())
    }
}
