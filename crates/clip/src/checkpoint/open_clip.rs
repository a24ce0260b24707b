//! open_clip's own format: a folder with `open_clip_config.json` (`{"model_cfg": ..,
//! "preprocess_cfg": ..}`, as open_clip's `push_to_hf_hub` writes it) and the weights in
//! OpenAI key names (`open_clip_model.safetensors`). This file reads the config.
//!
//! Every option a published open_clip ViT CLIP with CLIP's tokenizer uses is supported
//! (`quick_gelu`, `head_width`, `mlp_ratio`, `image_size`, layer scale, the pooling types,
//! `no_ln_pre`, `final_ln_after_pool`); any other option with a value that changes the model is
//! refused, naming it. Options that only matter in training (`patch_dropout`, ...) are read
//! and ignored, as open_clip ignores them in inference.
//!
//! Not here: the key names (`openai.rs`), the preprocessing itself (`clip-image`).

use crate::config::{TextPool, VisionPool};
use crate::{Activation, ClipConfig, Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// The file that marks an open_clip folder.
pub const CONFIG_FILE: &str = "open_clip_config.json";

/// The weight files an open_clip folder may hold, in the order they are looked for.
pub const WEIGHT_FILES: [&str; 3] = [
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "model.safetensors",
];

/// open_clip's `preprocess_cfg`, as read (applied to the image preprocessor by the caller).
#[derive(Clone, Debug, PartialEq)]
pub struct OpenClipPreprocess {
    /// Side of the square input.
    pub size: usize,
    /// Per-channel mean (RGB).
    pub mean: [f64; 3],
    /// Per-channel standard deviation (RGB).
    pub std: [f64; 3],
    /// `bicubic` or `bilinear`.
    pub interpolation: String,
    /// `shortest`, `longest` or `squash`.
    pub resize_mode: String,
    /// The padding value of `longest`, 0..=255.
    pub fill_color: u8,
}

impl OpenClipPreprocess {
    /// The image preprocessing open_clip's inference transform does with these settings.
    pub fn preprocess_config(&self) -> clip_image::PreprocessConfig {
        use clip_image::{Filter, OpenClipResize};
        let mode = match self.resize_mode.as_str() {
            "longest" => OpenClipResize::Longest,
            "squash" => OpenClipResize::Squash,
            _ => OpenClipResize::Shortest,
        };
        let filter = match self.interpolation.as_str() {
            "bilinear" => Filter::Bilinear,
            _ => Filter::Bicubic,
        };
        clip_image::PreprocessConfig::open_clip(
            self.size,
            mode,
            filter,
            self.fill_color,
            self.mean,
            self.std,
        )
    }
}

/// Reads `open_clip_config.json` given as bytes; `path` names it in errors.
pub(crate) fn read_config(bytes: &[u8], path: &Path) -> Result<(ClipConfig, OpenClipPreprocess)> {
    let bad = |reason: String| Error::InvalidConfig {
        path: path.to_path_buf(),
        reason,
    };
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let root = v
        .as_object()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    // Hub files nest the model's config; a bare model config (open_clip's model_configs/) is
    // taken too.
    let model = match root.get("model_cfg") {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad("model_cfg is not an object".into())),
        None => root,
    };
    let empty = Map::new();
    let section = |name: &str| match model.get(name) {
        Some(Value::Object(m)) => Ok(m),
        None => Ok(&empty),
        Some(_) => Err(bad(format!("{name} is not an object"))),
    };
    let (vision, text) = (section("vision_cfg")?, section("text_cfg")?);
    check_keys(model, TOP_KEYS, "", &bad)?;
    check_keys(vision, VISION_KEYS, "vision_cfg.", &bad)?;
    check_keys(text, TEXT_KEYS, "text_cfg.", &bad)?;
    let r = Reader { bad: &bad };
    let act = match r.flag(model, "quick_gelu", "")? {
        true => Activation::QuickGelu,
        false => Activation::Gelu,
    };
    let mut cfg = ClipConfig::vit_base_patch32();
    cfg.projection_dim = r.num(model, "embed_dim", "", 512)?;
    let v = &mut cfg.vision;
    v.hidden_size = r.num(vision, "width", "vision_cfg.", 768)?;
    v.num_hidden_layers = r.num(vision, "layers", "vision_cfg.", 12)?;
    v.patch_size = r.num(vision, "patch_size", "vision_cfg.", 16)?;
    v.image_size = r.square(vision, "image_size", "vision_cfg.", 224)?;
    let head_width = r.num(vision, "head_width", "vision_cfg.", 64)?;
    v.num_attention_heads = v.hidden_size / head_width;
    v.intermediate_size = r.mlp(vision, "vision_cfg.", v.hidden_size)?;
    v.hidden_act = act;
    v.layer_norm_eps = 1e-5;
    v.layer_scale = r.layer_scale(vision, "vision_cfg.")?;
    v.ln_pre = !r.flag(vision, "no_ln_pre", "vision_cfg.")?;
    v.final_ln_after_pool = r.flag(vision, "final_ln_after_pool", "vision_cfg.")?;
    v.pool = match r
        .string(vision, "pool_type", "vision_cfg.", "tok")?
        .as_str()
    {
        "tok" => VisionPool::ClassToken,
        "avg" => VisionPool::MeanOfPatches,
        other => return Err(unsupported("vision_cfg.pool_type", other, "tok, avg", &bad)),
    };
    if head_width == 0 || !v.hidden_size.is_multiple_of(head_width) {
        return Err(bad(format!(
            "vision_cfg.width {} is not a multiple of head_width {head_width}",
            v.hidden_size
        )));
    }
    let t = &mut cfg.text;
    t.hidden_size = r.num(text, "width", "text_cfg.", 512)?;
    t.num_hidden_layers = r.num(text, "layers", "text_cfg.", 12)?;
    t.num_attention_heads = r.num(text, "heads", "text_cfg.", 8)?;
    t.vocab_size = r.num(text, "vocab_size", "text_cfg.", 49408)?;
    t.max_position_embeddings = r.num(text, "context_length", "text_cfg.", 77)?;
    t.intermediate_size = r.mlp(text, "text_cfg.", t.hidden_size)?;
    t.hidden_act = act;
    t.layer_norm_eps = 1e-5;
    t.layer_scale = r.layer_scale(text, "text_cfg.")?;
    t.pool = match r.string(text, "pool_type", "text_cfg.", "argmax")?.as_str() {
        "argmax" => TextPool::Argmax,
        "first" => TextPool::First,
        "last" => TextPool::Last,
        "eos" => TextPool::FirstOf(r.num(text, "eos_id", "text_cfg.", 2)? as u32),
        other => {
            return Err(unsupported(
                "text_cfg.pool_type",
                other,
                "argmax, first, last, eos",
                &bad,
            ))
        }
    };
    cfg.validate().map_err(&bad)?;
    let pre = preprocess(root.get("preprocess_cfg"), cfg.vision.image_size, &bad)?;
    Ok((cfg, pre))
}

/// A key's fate: read (and used, or without effect in inference), or refused unless it has
/// the value that leaves the model as CLIP's.
enum Key {
    /// Read by [`read_config`].
    Read,
    /// Training-only or informational: ignored whatever its value.
    Ignored,
    /// Must be absent, null, or equal to this value; any other changes the model in a way
    /// this engine does not compute.
    Only(fn(&Value) -> bool),
}

fn is_false(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(false))
}

fn is_null(v: &Value) -> bool {
    v.is_null()
}

fn is_linear(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("linear")
}

fn is_learnable(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("learnable")
}

fn is_default_block(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("default")
}

const TOP_KEYS: &[(&str, Key)] = &[
    ("embed_dim", Key::Read),
    ("quick_gelu", Key::Read),
    ("vision_cfg", Key::Read),
    ("text_cfg", Key::Read),
    ("init_logit_scale", Key::Ignored),
    ("cast_dtype", Key::Ignored),
    ("init_logit_bias", Key::Only(is_null)),
    ("custom_text", Key::Only(is_false)),
    ("multimodal_cfg", Key::Only(is_null)),
];

const VISION_KEYS: &[(&str, Key)] = &[
    ("width", Key::Read),
    ("layers", Key::Read),
    ("patch_size", Key::Read),
    ("image_size", Key::Read),
    ("head_width", Key::Read),
    ("mlp_ratio", Key::Read),
    ("ls_init_value", Key::Read),
    ("pool_type", Key::Read),
    ("final_ln_after_pool", Key::Read),
    ("no_ln_pre", Key::Read),
    ("patch_dropout", Key::Ignored),
    ("output_tokens", Key::Ignored),
    ("attentional_pool", Key::Only(is_false)),
    ("attn_pooler_queries", Key::Ignored),
    ("attn_pooler_heads", Key::Ignored),
    ("pos_embed_type", Key::Only(is_learnable)),
    ("act_kwargs", Key::Only(is_null)),
    ("norm_kwargs", Key::Only(is_null)),
    ("block_type", Key::Only(is_default_block)),
    ("qk_norm", Key::Only(is_false)),
    ("scaled_cosine_attn", Key::Only(is_false)),
    ("scale_heads", Key::Only(is_false)),
    ("scale_attn_inner", Key::Only(is_false)),
    ("scale_attn", Key::Only(is_false)),
    ("scale_fc", Key::Only(is_false)),
    ("timm_model_name", Key::Only(is_null)),
    ("timm_model_pretrained", Key::Ignored),
    ("timm_pool", Key::Ignored),
    ("timm_proj", Key::Ignored),
    ("timm_proj_bias", Key::Ignored),
    ("timm_drop", Key::Ignored),
    ("timm_drop_path", Key::Ignored),
];

const TEXT_KEYS: &[(&str, Key)] = &[
    ("context_length", Key::Read),
    ("vocab_size", Key::Read),
    ("width", Key::Read),
    ("heads", Key::Read),
    ("layers", Key::Read),
    ("mlp_ratio", Key::Read),
    ("ls_init_value", Key::Read),
    ("pool_type", Key::Read),
    ("eos_id", Key::Read),
    // No effect in open_clip's TextTransformer without a class embedding.
    ("final_ln_after_pool", Key::Ignored),
    // The padding id matters only with a padding mask, which needs no_causal_mask.
    ("pad_id", Key::Ignored),
    ("output_tokens", Key::Ignored),
    ("no_causal_mask", Key::Only(is_false)),
    ("proj_bias", Key::Only(is_false)),
    ("proj_type", Key::Only(is_linear)),
    ("embed_cls", Key::Only(is_false)),
    ("hf_tokenizer_name", Key::Only(is_null)),
    ("tokenizer_mode", Key::Only(is_null)),
    ("tokenizer_kwargs", Key::Only(is_null)),
    ("hf_model_name", Key::Only(is_null)),
    ("hf_model_pretrained", Key::Ignored),
    ("hf_proj_type", Key::Ignored),
    ("hf_pooler_type", Key::Ignored),
    ("act_kwargs", Key::Only(is_null)),
    ("norm_kwargs", Key::Only(is_null)),
    ("block_type", Key::Only(is_default_block)),
    ("qk_norm", Key::Only(is_false)),
    ("scaled_cosine_attn", Key::Only(is_false)),
    ("scale_heads", Key::Only(is_false)),
    ("scale_attn_inner", Key::Only(is_false)),
    ("scale_attn", Key::Only(is_false)),
    ("scale_fc", Key::Only(is_false)),
];

/// Refuses keys this engine does not know, and known keys whose value it cannot compute.
fn check_keys(
    section: &Map<String, Value>,
    known: &[(&str, Key)],
    prefix: &str,
    bad: &impl Fn(String) -> Error,
) -> Result<()> {
    for (key, value) in section {
        match known.iter().find(|(k, _)| k == key) {
            None => {
                return Err(bad(format!(
                    "option {prefix}{key} is not supported (no published open_clip ViT CLIP \
                     with CLIP's tokenizer uses it)"
                )))
            }
            Some((_, Key::Only(ok))) if !ok(value) => {
                return Err(bad(format!(
                    "option {prefix}{key} = {value} is not supported (no published open_clip \
                     ViT CLIP with CLIP's tokenizer uses it)"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

fn unsupported(key: &str, value: &str, known: &str, bad: &impl Fn(String) -> Error) -> Error {
    bad(format!(
        "option {key} = {value:?} is not supported ({known})"
    ))
}

/// Typed reads of config values, with the error naming the key.
struct Reader<'a, F: Fn(String) -> Error> {
    bad: &'a F,
}

impl<F: Fn(String) -> Error> Reader<'_, F> {
    fn num(
        &self,
        s: &Map<String, Value>,
        key: &str,
        prefix: &str,
        default: usize,
    ) -> Result<usize> {
        match s.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x
                .as_u64()
                .filter(|&n| n > 0 && n < (1 << 31))
                .map(|n| n as usize)
                .ok_or_else(|| {
                    (self.bad)(format!("{prefix}{key} = {x} is not a positive integer"))
                }),
        }
    }

    /// An int, or `[n, n]` (open_clip allows a pair; only square inputs are supported).
    fn square(
        &self,
        s: &Map<String, Value>,
        key: &str,
        prefix: &str,
        default: usize,
    ) -> Result<usize> {
        match s.get(key) {
            Some(Value::Array(a)) => match a.as_slice() {
                [h, w] if h == w && h.as_u64().is_some() => {
                    let mut one = Map::new();
                    one.insert(key.to_string(), h.clone());
                    self.num(&one, key, prefix, default)
                }
                _ => Err((self.bad)(format!(
                    "{prefix}{key} = {} is not supported (square images only)",
                    Value::Array(a.clone())
                ))),
            },
            _ => self.num(s, key, prefix, default),
        }
    }

    fn flag(&self, s: &Map<String, Value>, key: &str, prefix: &str) -> Result<bool> {
        match s.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(x) => Err((self.bad)(format!(
                "{prefix}{key} = {x} is not true or false"
            ))),
        }
    }

    fn string(
        &self,
        s: &Map<String, Value>,
        key: &str,
        prefix: &str,
        default: &str,
    ) -> Result<String> {
        match s.get(key) {
            None | Some(Value::Null) => Ok(default.to_string()),
            Some(Value::String(v)) => Ok(v.clone()),
            Some(x) => Err((self.bad)(format!("{prefix}{key} = {x} is not a string"))),
        }
    }

    /// `int(width * mlp_ratio)`, as open_clip sizes the MLP.
    fn mlp(&self, s: &Map<String, Value>, prefix: &str, width: usize) -> Result<usize> {
        let ratio = match s.get("mlp_ratio") {
            None | Some(Value::Null) => 4.0,
            Some(x) => x
                .as_f64()
                .filter(|r| r.is_finite() && *r > 0.0 && *r < 64.0)
                .ok_or_else(|| (self.bad)(format!("{prefix}mlp_ratio = {x} is not in (0, 64)")))?,
        };
        Ok((width as f64 * ratio) as usize)
    }

    /// Layer scale is present when `ls_init_value` is a number (its value only initialises
    /// the trained `ls_1` / `ls_2`, which the weights hold).
    fn layer_scale(&self, s: &Map<String, Value>, prefix: &str) -> Result<bool> {
        match s.get("ls_init_value") {
            None | Some(Value::Null) => Ok(false),
            Some(x) if x.as_f64().is_some() => Ok(true),
            Some(x) => Err((self.bad)(format!(
                "{prefix}ls_init_value = {x} is not a number"
            ))),
        }
    }
}

/// open_clip's `preprocess_cfg` with its defaults (OpenAI's mean and std, bicubic, shortest
/// edge, fill 0).
fn preprocess(
    v: Option<&Value>,
    image_size: usize,
    bad: &impl Fn(String) -> Error,
) -> Result<OpenClipPreprocess> {
    let mut pre = OpenClipPreprocess {
        size: image_size,
        mean: clip_image::CLIP_MEAN,
        std: clip_image::CLIP_STD,
        interpolation: "bicubic".into(),
        resize_mode: "shortest".into(),
        fill_color: 0,
    };
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(pre);
    };
    let p = v
        .as_object()
        .ok_or_else(|| bad("preprocess_cfg is not an object".into()))?;
    let triple = |key: &str| -> Result<Option<[f64; 3]>> {
        match p.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) if a.len() == 3 => {
                let mut out = [0.0; 3];
                for (o, x) in out.iter_mut().zip(a) {
                    *o = x
                        .as_f64()
                        .filter(|f| f.is_finite())
                        .ok_or_else(|| bad(format!("preprocess_cfg.{key} holds {x}")))?;
                }
                Ok(Some(out))
            }
            Some(x) => Err(bad(format!("preprocess_cfg.{key} = {x} is not 3 numbers"))),
        }
    };
    if let Some(m) = triple("mean")? {
        pre.mean = m;
    }
    if let Some(s) = triple("std")? {
        if s.iter().any(|&x| x.abs() < 1e-6) {
            return Err(bad(format!(
                "preprocess_cfg.std = {s:?} holds a value near 0"
            )));
        }
        pre.std = s;
    }
    let text = |key: &str, allowed: &[&str], default: &str| -> Result<String> {
        match p.get(key) {
            None | Some(Value::Null) => Ok(default.to_string()),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
            Some(x) => Err(bad(format!(
                "preprocess_cfg.{key} = {x} is not supported ({})",
                allowed.join(", ")
            ))),
        }
    };
    // open_clip treats "random" as bicubic outside training.
    pre.interpolation = match text(
        "interpolation",
        &["bicubic", "bilinear", "random"],
        "bicubic",
    )?
    .as_str()
    {
        "random" => "bicubic".into(),
        s => s.into(),
    };
    pre.resize_mode = text(
        "resize_mode",
        &["shortest", "longest", "squash"],
        "shortest",
    )?;
    pre.fill_color = match p.get("fill_color") {
        None | Some(Value::Null) => 0,
        Some(x) => x
            .as_u64()
            .filter(|&n| n <= 255)
            .map(|n| n as u8)
            .ok_or_else(|| bad(format!("preprocess_cfg.fill_color = {x} is not 0..=255")))?,
    };
    if let Some(size) = p.get("size").filter(|s| !s.is_null()) {
        let n = match size {
            Value::Array(a) if a.len() == 2 && a[0] == a[1] => a[0].as_u64(),
            x => x.as_u64(),
        };
        match n {
            Some(n) if n as usize == image_size => {}
            _ => {
                return Err(bad(format!(
                    "preprocess_cfg.size = {size} differs from vision_cfg.image_size {image_size}"
                )))
            }
        }
    }
    Ok(pre)
}
