//! The OpenAI format: the state dict of OpenAI's `clip` (and open_clip's), where q, k and v
//! are one fused `in_proj` and the projections are stored `[in, out]`. Its configuration is
//! inferred from the tensor shapes (`infer.rs`), or read from a Hugging Face `config.json`
//! placed beside it.
//!
//! Not here: loading tensors.

use super::Stored;

/// Logical prefixes and their OpenAI names, longest first where one extends another.
const PREFIXES: [(&str, &str); 10] = [
    (
        "vision_model.embeddings.patch_embedding.weight",
        "visual.conv1.weight",
    ),
    (
        "vision_model.embeddings.class_embedding",
        "visual.class_embedding",
    ),
    (
        "vision_model.embeddings.position_embedding.weight",
        "visual.positional_embedding",
    ),
    ("vision_model.pre_layrnorm", "visual.ln_pre"),
    ("vision_model.post_layernorm", "visual.ln_post"),
    (
        "vision_model.encoder.layers",
        "visual.transformer.resblocks",
    ),
    ("text_model.embeddings.token_embedding", "token_embedding"),
    (
        "text_model.embeddings.position_embedding.weight",
        "positional_embedding",
    ),
    ("text_model.final_layer_norm", "ln_final"),
    ("text_model.encoder.layers", "transformer.resblocks"),
];

/// Names inside one encoder layer (after `layers.N.`); open_clip's layer scale included.
const LAYER: [(&str, &str); 8] = [
    ("layer_norm1", "ln_1"),
    ("layer_norm2", "ln_2"),
    ("layer_scale1", "ls_1.gamma"),
    ("layer_scale2", "ls_2.gamma"),
    ("self_attn.qkv_proj.weight", "attn.in_proj_weight"),
    ("self_attn.qkv_proj.bias", "attn.in_proj_bias"),
    ("self_attn.out_proj", "attn.out_proj"),
    ("mlp.fc1", "mlp.c_fc"),
];

/// Where OpenAI's state dict keeps the logical tensor `name`.
pub(crate) fn resolve(name: &str) -> Stored {
    match name {
        "visual_projection.weight" => return Stored::Transposed("visual.proj".into()),
        "text_projection.weight" => return Stored::Transposed("text_projection".into()),
        _ => {}
    }
    for (logical, stored) in PREFIXES {
        if let Some(rest) = name.strip_prefix(logical) {
            let rest = if logical.ends_with(".layers") {
                layer_suffix(rest)
            } else {
                rest.to_string()
            };
            return Stored::Key(format!("{stored}{rest}"));
        }
    }
    Stored::Key(name.to_string())
}

/// `.N.layer_norm1.weight` -> `.N.ln_1.weight`, and so on.
fn layer_suffix(rest: &str) -> String {
    let Some((index, tail)) = rest.strip_prefix('.').and_then(|r| r.split_once('.')) else {
        return rest.to_string();
    };
    let tail = LAYER
        .iter()
        .chain(&[("mlp.fc2", "mlp.c_proj")])
        .find_map(|(l, s)| tail.strip_prefix(l).map(|t| format!("{s}{t}")))
        .unwrap_or_else(|| tail.to_string());
    format!(".{index}.{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_as_openai_stores_them() {
        let cases = [
            (
                "vision_model.encoder.layers.11.self_attn.qkv_proj.weight",
                "visual.transformer.resblocks.11.attn.in_proj_weight",
            ),
            (
                "text_model.encoder.layers.0.mlp.fc2.bias",
                "transformer.resblocks.0.mlp.c_proj.bias",
            ),
            (
                "text_model.encoder.layers.3.layer_norm2.weight",
                "transformer.resblocks.3.ln_2.weight",
            ),
            (
                "vision_model.encoder.layers.5.layer_scale2",
                "visual.transformer.resblocks.5.ls_2.gamma",
            ),
            (
                "vision_model.encoder.layers.2.self_attn.out_proj.weight",
                "visual.transformer.resblocks.2.attn.out_proj.weight",
            ),
            ("vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"),
            (
                "text_model.embeddings.token_embedding.weight",
                "token_embedding.weight",
            ),
            ("logit_scale", "logit_scale"),
        ];
        for (logical, stored) in cases {
            assert_eq!(resolve(logical), Stored::Key(stored.into()), "{logical}");
        }
        assert_eq!(
            resolve("visual_projection.weight"),
            Stored::Transposed("visual.proj".into())
        );
    }
}
